"""Hostile and broken specs: each is refused with a positioned error in bounded time, never a
traceback, a hang or an unbounded allocation (the bounds live in modelmon/limits.py).

The cases that once hung or exhausted memory run `modelmon validate` as a subprocess with a
timeout and an address-space limit, so a regression fails here instead of stalling the suite.
"""

from __future__ import annotations

import html.parser
import resource
import subprocess
import sys
from pathlib import Path

import markdown
import pytest
import yaml

from modelmon import build, limits
from modelmon.conventions import escape
from tests import binaries
from tests.test_validation import after, at, errors_in, errors_of, spec

REPO = Path(__file__).resolve().parent.parent

MINIMAL = spec(
    """
    version: modelmon/v1
    service: svc
    slos:
      - name: availability
        objective: 99
        sli:
          availability: {}
    """
)


def with_selector(selector: str) -> str:
    return MINIMAL.replace("availability: {}", f"availability:\n        selector: {selector}")


def with_receiver(receiver: str) -> str:
    """MINIMAL with one receiver (`receiver`: its kind and fields, in flow style) for pages and tickets."""
    return MINIMAL + f"notifications:\n  receivers:\n    - name: r\n      {receiver}\n  page: r\n  ticket: r\n"


def validate(root: Path, *, seconds: int = 60) -> subprocess.CompletedProcess:
    """`modelmon validate` in its own process, with 2 GiB of address space at most."""

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "modelmon.cli", "validate"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=seconds,
        preexec_fn=bounded,
        check=False,
    )


def refused(root: Path, text: str) -> str:
    """The output of validate on one spec holding `text`, which must refuse it (exit 2) without a traceback."""
    (root / "slos").mkdir(exist_ok=True)
    (root / "slos" / "x.yaml").write_text(text, encoding="utf-8")
    result = validate(root)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stderr


# --- What a spec may cost ---------------------------------------------------------------


def alias_bomb(levels: int, width: int) -> str:
    """`levels` anchors, each a list of `width` aliases of the one before: width**levels values."""
    anchors = "a0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]\n" for i in range(1, levels + 1)
    )
    return MINIMAL + anchors


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    """7 levels of 9 aliases are about 430 bytes and 4.8 million values once expanded."""
    text = alias_bomb(7, 9)
    assert len(text.encode()) < 600
    out = refused(tmp_path, text)
    # At the first anchor whose expansion is too big: 9**6 = 531,441 > 200,000 > 9**5.
    assert 9**5 < limits.MAX_VALUES < 9**6
    assert f"slos/x.yaml:{at(text, '&a6')}: this value expands to more than {limits.MAX_VALUES:,} values" in out


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    text = MINIMAL.replace("service: svc", "service: svc\nloop: &r [*r]")
    out = refused(tmp_path, text)
    assert f"slos/x.yaml:{at(text, '&r')}: this value contains itself" in out


def test_deep_nesting_is_refused_where_it_gets_too_deep(tmp_path):
    """900 brackets once overflowed the parser's stack (RecursionError)."""
    text = MINIMAL + "deep: " + "[" * 900 + "]" * 900 + "\n"
    out = refused(tmp_path, text)
    column = len("deep: ") + limits.MAX_DEPTH  # bracket k is level k + 1 (the file's mapping is level 1)
    line = text.count("\n", 0, text.index("deep:")) + 1
    assert f"slos/x.yaml:{line}:{column}: nested more than {limits.MAX_DEPTH} levels deep" in out


def test_nesting_made_deep_by_aliases_is_refused(tmp_path):
    """Each anchor nests the one before: the text is shallow, the data it means is not."""
    levels = "a0: &a0 [[[[x]]]]\n" + "".join(f"a{i}: &a{i} [[[[*a{i - 1}]]]]\n" for i in range(1, 12))
    out = refused(tmp_path, MINIMAL + levels)
    assert f"nested more than {limits.MAX_DEPTH} levels deep once YAML aliases are expanded" in out


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    text = MINIMAL + "# " + "x" * limits.MAX_FILE_BYTES + "\n"
    out = refused(tmp_path, text)
    assert f"slos/x.yaml:1:1: the file is larger than {limits.MAX_FILE_BYTES // 1024} KiB" in out


def test_more_slos_than_a_file_may_hold_are_refused(tmp_path):
    many = "".join(
        f"  - {{name: s{i}, objective: 99, sli: {{availability: {{}}}}}}\n" for i in range(limits.MAX_SLOS_PER_FILE + 1)
    )
    text = MINIMAL.split("slos:")[0] + "slos:\n" + many
    out = refused(tmp_path, text)
    assert f"slos: must hold at most {limits.MAX_SLOS_PER_FILE:,} (got {limits.MAX_SLOS_PER_FILE + 1:,})" in out


def test_an_alias_of_a_long_string_is_refused_past_the_expanded_character_limit(tmp_path):
    """Values stay few, but each alias repeats 16 KiB of text: 200 of them would be 3 MiB."""
    text = MINIMAL + "long: &t " + "x" * limits.MAX_TEXT_CHARS + "\nmany: [" + ", ".join(["*t"] * 200) + "]\n"
    assert len(text.encode()) < limits.MAX_FILE_BYTES
    out = refused(tmp_path, text)
    assert (
        f"slos/x.yaml:{at(text, '[*t')}: this value expands to more than {limits.MAX_EXPANDED_CHARS:,} characters"
        in out
    )


def test_a_value_longer_than_the_text_limit_is_refused_where_it_is(tmp_path):
    text = MINIMAL.replace("objective: 99", "objective: 99\n    description: " + "x" * (limits.MAX_TEXT_CHARS + 1))
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'description: ')}: slos[0].description: is "
        f"{limits.MAX_TEXT_CHARS + 1:,} characters long; at most {limits.MAX_TEXT_CHARS:,}"
    ]


@pytest.mark.parametrize("where", ["service", "slo", "alert"])
def test_a_label_value_copied_into_every_rule_is_bounded_in_length(tmp_path, where):
    """64 labels of 20,000 characters (one aliased string, 20 KB of file) once took validate 219 s."""
    value = "x" * (limits.MAX_LABEL_VALUE_CHARS + 1)
    block = f"labels: {{team: {value}}}"
    if where == "service":
        text = MINIMAL.replace("service: svc", f"service: svc\n{block}")
    elif where == "slo":
        text = MINIMAL.replace("objective: 99", f"objective: 99\n    {block}")
    else:
        text = MINIMAL.replace("objective: 99", f"objective: 99\n    alerting:\n      page_alert: {{{block}}}")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{at(text, value)}: ")
    assert error.endswith(
        f"labels.team: must be at most {limits.MAX_LABEL_VALUE_CHARS:,} characters "
        f"(got {limits.MAX_LABEL_VALUE_CHARS + 1:,})"
    )


def test_labels_at_their_limits_compile_in_bounded_time(tmp_path):
    """The most a label block may hold: 64 values of 1,024 characters, in every rule and test."""
    labels = "".join(f"  l{i}: {chr(97 + i % 26) * limits.MAX_LABEL_VALUE_CHARS}\n" for i in range(limits.MAX_LABELS))
    text = MINIMAL.replace("service: svc", "service: svc\nlabels:\n" + labels)
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "x.yaml").write_text(text)
    result = validate(tmp_path, seconds=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("alerting:\n      threshold_alert: {for: 7h}", "alerting.threshold_alert.for: must be at most 6h"),
        ("alerting:\n      outage_alert: {for: 1d}", "alerting.outage_alert.for: must be at most 6h"),
        ("alerting:\n      budget_alert: {for: 3650d}", "alerting.budget_alert.for: must be at most 6h"),
        ("period: 366d", "period: must be at most 366d".replace("366d", "365d")),
    ],
)
def test_what_the_tests_replay_whole_is_bounded(tmp_path, block, problem):
    """A threshold alert held 1d took 40 s to compile, 30d timed out at 2 GB; a 10-year period
    with windows to match, 3.7 GB: the tests replay the whole `for` and the whole period."""
    text = MINIMAL.replace("objective: 99", f"objective: 99\n    {block}")
    [error] = errors_in(tmp_path, text)
    assert f"slos[0].{problem}" in error


def test_a_number_too_long_to_read_is_a_positioned_error_not_a_traceback(tmp_path):
    """Python refuses integers of over 4,300 digits: that was a ValueError traceback."""
    digits = "1" * 5000
    text = MINIMAL.replace("objective: 99", f"objective: {digits}")
    out = refused(tmp_path, text)
    assert f"slos/x.yaml:{at(text, digits)}: slos[0].objective: is a number 5,000 characters long; at most" in out
    assert digits[:100] not in out


def test_group_by_is_bounded_and_names_each_label_once(tmp_path):
    """120 aliases of one 16,000-character label name once made a 138 MB rules file."""
    long_name = "l" + "a" * limits.MAX_NAME_CHARS
    text = MINIMAL.replace("availability: {}", f"availability: {{group_by: [model, {long_name}]}}")
    [error] = errors_in(tmp_path, text)
    assert error.endswith(f"group_by[1]: must be at most {limits.MAX_NAME_CHARS} characters (got {len(long_name)})")
    text = MINIMAL.replace("availability: {}", "availability: {group_by: [model, region, model]}")
    [error] = errors_in(tmp_path, text)
    assert error.endswith("sli.availability.group_by: names model more than once")
    many = ", ".join(f"l{i}" for i in range(limits.MAX_LABELS + 1))
    text = MINIMAL.replace("availability: {}", f"availability: {{group_by: [{many}]}}")
    [error] = errors_in(tmp_path, text)
    assert f"group_by: must hold at most {limits.MAX_LABELS} (got {limits.MAX_LABELS + 1})" in error


@pytest.mark.parametrize("duration", ["9999999999999y", "11y", "3651d", "1" * 100 + "s"])
def test_a_duration_past_ten_years_is_refused_at_the_spec_not_by_promtool(tmp_path, duration):
    """`for: 9999999999999y` passed validation and promtool refused the rule file at rules:1:1."""
    text = MINIMAL.replace("objective: 99", f"objective: 99\n    alerting:\n      outage_alert: {{for: '{duration}'}}")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{at(text, repr(duration))}: slos[0].alerting.outage_alert.for: ")
    assert "must be at most 3650d" in error
    assert len(error) < 200, "a long duration is not echoed"


# --- Regular expressions are RE2's, in linear time ---------------------------------------


def test_a_regex_that_backtracks_exponentially_validates_in_bounded_time(tmp_path):
    """`(.*)*X` hung validate when the test-value check ran it through Python's `re`."""
    text = with_selector("'model=~\"(.*)*X\"'")
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "x.yaml").write_text(text)
    result = validate(tmp_path, seconds=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s), 1 SLO(s): valid" in result.stdout


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("(", "missing ): ("), ("\\\\x", "invalid escape sequence: \\x"), ("a**", "bad repetition operator: **")],
)
def test_a_regex_prometheus_refuses_is_a_positioned_error(tmp_path, pattern, reason):
    text = with_selector(f"'model=~\"{pattern}\"'")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{after(text, 'selector: ')}: slos[0].sli.availability.selector: model=~")
    assert f"not a regular expression Prometheus accepts (RE2 syntax): {reason}" in error


def test_regex_syntax_only_re2_has_is_accepted(tmp_path):
    r"""\pL (a Unicode letter) is RE2 syntax that Python's `re` refused with a traceback."""
    assert errors_in(tmp_path, with_selector("'model=~\"\\\\pL[\\\\pL\\\\d.-]*\"'")) == []


def test_a_family_pattern_is_judged_by_re2(tmp_path):
    base = MINIMAL + "dashboard:\n  families:\n    - {name: Letters, pattern: 'PATTERN'}\n"
    assert errors_in(tmp_path, base.replace("PATTERN", "\\pL+")) == []
    text = base.replace("PATTERN", "(")
    [error] = errors_in(tmp_path, text)
    assert error == (
        f"slos/x.yaml:{after(text, 'pattern: ')}: dashboard.families[0].pattern: "
        "is not a regular expression Prometheus accepts (RE2 syntax): missing ): ("
    )


def test_a_regex_longer_than_the_limit_is_refused(tmp_path):
    text = with_selector(f"'model=~\"{'a' * (limits.MAX_REGEX_CHARS + 1)}\"'")
    [error] = errors_in(tmp_path, text)
    assert f"is longer than {limits.MAX_REGEX_CHARS} characters" in error


# --- Selectors are PromQL strings --------------------------------------------------------


def test_a_raw_line_break_in_a_selector_is_refused_with_its_escape(tmp_path):
    text = with_selector('"model=\\"a\\nb\\""')
    [error] = errors_in(tmp_path, text)
    assert "must be PromQL label matchers" in error and "(a line break inside quotes is written \\n)" in error


def test_an_escape_promql_does_not_know_is_refused(tmp_path):
    text = with_selector("'model=\"a\\qb\"'")
    [error] = errors_in(tmp_path, text)
    assert error.endswith("model=: \\q is not an escape PromQL knows")


# --- Names and addresses ------------------------------------------------------------------


def test_names_longer_than_a_file_name_allows_are_refused(tmp_path):
    text = MINIMAL.replace("service: svc", "service: " + "s" * 300)
    [error] = errors_in(tmp_path, text)
    assert (
        error == f"slos/x.yaml:{at(text, 'sss')}: service: must be at most {limits.MAX_NAME_CHARS} characters (got 300)"
    )
    text = MINIMAL.replace("availability: {}", "availability: {}\n    alerting:\n      name: A" + "a" * 200)
    [error] = errors_in(tmp_path, text)
    assert f"slos[0].alerting.name: must be at most {limits.MAX_NAME_CHARS} characters (got 201)" in error


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("runbook_base_url", "javascript:alert(1)", "must be an http:// or https:// address with a host"),
        ("grafana_url", "'http://grafana/{{ .Foo }}'", "must not hold spaces, control characters or any of"),
        ("runbook_base_url", "'https://docs/<script>'", "must not hold spaces, control characters or any of"),
        ("grafana_url", "https://grafana/?orgId=1", "must not have a query or fragment"),
        ("runbook_base_url", "file:///etc/passwd", "must be an http:// or https:// address with a host"),
        ("grafana_url", "http://grafana:99999", "is not a URL: its host, port or brackets are malformed (got"),
        ("runbook_base_url", "'http://[docs/runbooks'", "is not a URL: its host, port or brackets are malformed"),
        ("grafana_url", "https://admin:hunter2pass@grafana.example.com", "holds credentials (user:password@)"),
        ("runbook_base_url", "https://admin:hunter2pass@docs:99999/runbooks", "holds credentials (user:password@)"),
    ],
)
def test_links_must_be_web_addresses(tmp_path, field, value, problem):
    """Every alert links to these: javascript: once reached every alert's runbook_url."""
    text = MINIMAL.replace("service: svc", f"service: svc\n{field}: {value}")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{after(text, f'{field}: ')}: {field}: {problem}")
    assert "hunter2pass" not in error


# --- Spec text is data --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["labels", "slos[0].labels"])
def test_a_go_template_in_a_label_value_is_refused(tmp_path, where):
    """These labels reach alert rules, whose labels Prometheus expands: this would run PromQL on every alert."""
    value = "'{{ with query \"count(up)\" }}{{ . }}{{ end }}'"
    if where == "labels":
        text = MINIMAL.replace("service: svc", f"service: svc\nlabels:\n  team: {value}")
    else:
        text = MINIMAL.replace("objective: 99", f"objective: 99\n    labels:\n      team: {value}")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{at(text, value)}: {where}.team: must not hold '{{{{' or '}}}}'")


# --- validate refuses what build would, all at once ---------------------------------------


def test_validate_names_a_query_promtool_refuses_beside_the_other_errors(tmp_path):
    """A Sloth query's syntax is promtool's to judge: validate runs it too, on every SLO that planned."""
    text = spec(
        """
        version: prometheus/v1
        service: checkout
        slos:
          - name: requests
            objective: 99.5
            sli:
              events:
                error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}])
                total_query: sum(rate(http_requests_total[{{.window}}]))
          - name: broken
            objective: 100.5
            sli:
              events:
                error_query: sum(rate(errors_total[{{.window}}]))
                total_query: sum(rate(requests_total[{{.window}}]))
        """
    )
    errors = errors_in(tmp_path, text)
    assert errors == [
        f"slos/x.yaml:{at(text, 'events:')}: slos[0].sli: promtool rejects the generated rule "
        "slo:sli_error_events:rate5m: could not parse expression: 2:1: parse error: unclosed left parenthesis",
        f"slos/x.yaml:{after(text, 'objective: ', 2)}: slos[1].objective: must be between 0 and 100 exclusive "
        "(got 100.5)",
    ]


@pytest.mark.parametrize(
    "total",
    [
        "sum(rate(http_requests_total[{{.window}}]))",
        "sum( rate(http_requests_total[ {{ .window }} ]) )",
        "'sum\n  (rate(http_requests_total[{{.window}}]))'",
    ],
)
def test_the_same_query_for_errors_and_total_is_refused(tmp_path, total):
    query = "sum(rate(http_requests_total[{{.window}}]))"
    text = MINIMAL.replace("availability: {}", f"events:\n        error_query: {query}\n        total_query: {total}")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{after(text, 'total_query: ')}: slos[0].sli.events.total_query: is the same")


@pytest.mark.parametrize(
    ("errors", "total"),
    [
        ('sum(rate(x{code="5  xx"}[{{.window}}]))', 'sum(rate(x{code="5 xx"}[{{.window}}]))'),
        ("sum(rate(a_b[{{.window}}])) or vector(0)", "sum(rate(a_b[{{.window}}])) orvector(0)"),
    ],
)
def test_queries_that_differ_beyond_spacing_are_not_the_same(tmp_path, errors, total):
    text = MINIMAL.replace(
        "availability: {}", f"events:\n        error_query: '{errors}'\n        total_query: '{total}'"
    )
    assert not [e for e in errors_in(tmp_path, text) if "is the same query" in e]


def test_a_zero_scrape_interval_is_refused(tmp_path):
    text = MINIMAL.replace("service: svc", "service: svc\nscrape_interval: 0s")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'scrape_interval: ')}: scrape_interval: must be longer than 0s: "
        "Prometheus' interval between two scrapes"
    ]


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b"])
def test_a_control_character_is_a_positioned_error(tmp_path, character):
    text = MINIMAL.replace("objective: 99", f"objective: 99\n    description: a{character}b")
    out = refused(tmp_path, text)
    assert f"slos/x.yaml:{at(text, character)}: YAML syntax error: unacceptable character #x{ord(character):04x}" in out


# --- Runbook pages show spec text, never run it -----------------------------------------

HOSTILE_PAGES = spec(
    """
    version: modelmon/v1
    service: svc
    slos:
      - name: availability
        description: '<img src=x onerror=alert(1)> *not bold* [not a link](https://x) {x}'
        objective: 99
        sli:
          availability:
            selector: 'model=~"claude`.*"'
        runbook:
          impact: |
            <script>alert(1)</script> stays **bold**, `<b>code</b>` stays code.
          mitigation: |
            ```
            <i>in a fence</i>
            ```
    dashboard:
      families:
        - {name: '<b>Claude</b>', pattern: '(?i)claude`?.*'}
    """
)


class _Tags(html.parser.HTMLParser):
    """Every tag of an HTML page with its attributes, and every text node."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)


def rendered(page: str) -> _Tags:
    """The page as the runbook site renders it: Python-Markdown with the extensions of mkdocs.yml."""
    site = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    extensions = [next(iter(e)) if isinstance(e, dict) else e for e in site["markdown_extensions"]]
    parser = _Tags()
    parser.feed(markdown.markdown(page, extensions=extensions))
    return parser


def test_runbook_pages_show_spec_text_as_text(tmp_path):
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "svc.yaml").write_text(HOSTILE_PAGES)
    compiled = build.compile_all(tmp_path)
    page = compiled.files["runbooks/SvcAvailabilityBudgetBurn.md"]
    found = rendered(page)
    tags = {tag for tag, _ in found.tags}
    assert not tags & {"img", "script", "i", "b"}, tags
    assert all(not name.startswith("on") for _, attrs in found.tags for name in attrs)
    hrefs = [attrs.get("href", "") for _, attrs in found.tags]
    assert "https://x" not in hrefs
    text = "".join(found.texts)
    # Shown letter for letter.
    assert "<img src=x onerror=alert(1)> *not bold* [not a link](https://x) {x}" in text
    assert "<script>alert(1)</script> stays" in text
    # In code, a tag shows as its escape: where Markdown sees code is not guessed.
    assert "&lt;b>code&lt;/b>" in text and "&lt;i>in a fence&lt;/i>" in text
    assert 'model=~"claude`.*"' in text  # the backtick did not close the selector's code span
    assert "(?i)claude`?.*" in text and "<b>Claude</b>" in text
    # The team's Markdown keeps its formatting.
    assert ("strong", {}) in found.tags and ("code", {}) in found.tags


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x]( JaVa&#115;cript:alert(1))",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x][r]\n\n[r]: vbscript:msgbox",
        "[x](java\nscript:alert(6))",
        "`[x](javascript:alert(1))`",
    ],
)
def test_runbook_text_links_that_run_code_are_refused(tmp_path, link):
    text = MINIMAL + "    runbook:\n      diagnosis: |\n" + "".join(f"        {line}\n" for line in link.splitlines())
    [error] = errors_in(tmp_path, text)
    assert "slos[0].runbook.diagnosis: the link to" in error and "is not allowed on a runbook page" in error


def test_runbook_text_links_to_web_mail_and_pages_are_kept(tmp_path):
    links = '[a](https://x.example/runbook) [b](mailto:oncall@example.com) [c](../index.md "title")'
    assert errors_in(tmp_path, MINIMAL + f"    runbook:\n      diagnosis: '{links}'\n") == []


def test_a_spec_file_name_cannot_end_the_runbook_header_comment(tmp_path):
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "a-->b.yaml").write_text(MINIMAL)
    compiled = build.compile_all(tmp_path)
    first = compiled.files["runbooks/SvcAvailabilityBudgetBurn.md"].splitlines()[0]
    assert first.startswith("<!--") and first.endswith("-->") and first.count("-->") == 1


# --- Alertmanager: spec values are label values and text, never matchers or templates ---------

NOTIFIED = MINIMAL + spec(
    """
    notifications:
      receivers:
        - name: oncall
          webhook: {url: "http://127.0.0.1:9/oncall"}
        - name: other
          webhook: {url: "http://127.0.0.1:9/other"}
      page: oncall
      ticket: oncall
      routes:
        - match: {team: 'x",severity=~".+'}
          page: other
          ticket: other
        - match: {team: 'ml"platform'}
          page: other
    """
)


@pytest.mark.parametrize("amtool", binaries.both("amtool"))
def test_route_matchers_match_the_spec_value_exactly_on_both_amtools(tmp_path, amtool):
    """A quote in a match value once ended the matcher's string and added a matcher of its own."""
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "x.yaml").write_text(NOTIFIED)
    build.write_all(tmp_path, build.compile_all(tmp_path))
    config = tmp_path / "alertmanager" / "alertmanager.yml"

    def receivers(**labels: str) -> str:
        matchers = [f'{name}="{escape(value)}"' for name, value in labels.items()]
        command = [amtool(), "config", "routes", "test", f"--config.file={config}", *matchers]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        return result.stdout.strip()

    assert receivers(service="svc", severity="warning", team="y") == "oncall"
    assert receivers(service="svc", severity="warning", team='x",severity=~".+') == "other"
    assert receivers(service="svc", severity="critical", team='ml"platform') == "other"
    assert receivers(service="svc", severity="warning", team='ml"platform') == "oncall"


@pytest.mark.parametrize(
    ("receiver", "path"),
    [
        ("slack: {api_url_file: /s/url, channel: '#a{{ .Status }}'}", "slack.channel"),
        ("email: {to: '{{ .CommonLabels.team }}@x.org', from: a@x.org, smarthost: 'm:25'}", "email.to"),
        ("webhook: {url: 'http://hook/{{ .Status }}'}", "webhook.url"),
    ],
)
def test_a_go_template_in_an_alertmanager_field_is_refused(tmp_path, receiver, path):
    text = with_receiver(receiver)
    [error] = errors_in(tmp_path, text)
    assert f"notifications.receivers[0].{path}: must not hold '{{{{' or '}}}}': Alertmanager would run it" in error


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://bot:Sup3rS3cret@hooks.example.com/x", "holds credentials (user:password@)"),
        ("https://hooks.example.com/x?token=Sup3rS3cret", "looks like a secret (token)"),
        ("https://fn.example.net/api/hook?code=Sup3rS3cret&name=x", "looks like a secret (code)"),
    ],
)
def test_a_webhook_url_holding_a_secret_is_refused_without_showing_it(tmp_path, url, problem):
    """docs/notifications.md promises secrets never reach generated files: nor do they reach errors."""
    text = (
        MINIMAL
        + f"notifications:\n  receivers:\n    - name: r\n      webhook: {{url: '{url}'}}\n  page: r\n  ticket: r\n"
    )
    [error] = errors_in(tmp_path, text)
    assert problem in error and "credentials_file" in error
    assert "Sup3rS3cret" not in error


def test_a_secret_pasted_where_its_file_belongs_is_not_echoed(tmp_path):
    text = MINIMAL + (
        "notifications:\n  receivers:\n    - name: r\n      pagerduty: {routing_key_file: R0UTINGKEYabc123}\n"
        "  page: r\n  ticket: r\n"
    )
    [error] = errors_in(tmp_path, text)
    assert "routing_key_file: must be the absolute path of the file Alertmanager reads the secret from" in error
    assert "R0UTINGKEY" not in error


def test_a_config_amtool_refuses_points_at_the_specs_notifications(tmp_path):
    """validate runs amtool too, and its complaint names the spec, not the generated file."""
    text = MINIMAL + (
        "notifications:\n  receivers:\n    - name: mail\n"
        "      email: {to: a@example.com, from: b@example.com, smarthost: mail.example.com}\n"
        "  page: mail\n  ticket: mail\n"
    )
    [error] = errors_in(tmp_path, text)
    assert error.startswith(f"slos/x.yaml:{at(text, 'notifications:')}: notifications: amtool check-config refuses")
    assert "missing port in address" in error


def test_a_spec_file_name_with_a_line_break_is_refused(tmp_path):
    """Every generated file names its specs in a header comment, which a line break would end."""
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "a\ngroups: []\n#.yaml").write_text(MINIMAL)
    assert errors_of(tmp_path) == [
        "slos/a\\ngroups: []\\n#.yaml:1:1: the file name holds a control character or line break; rename the file"
    ]


@pytest.mark.parametrize(
    "impact",
    [
        "See \\`<img src=x onerror=alert(1)>` here",  # an escaped backtick opens no code span
        "`a\n\n<img src=y onerror=alert(4)>\n\nb`",  # a code span cannot cross paragraphs
        "```\n<img src=z onerror=alert(5)>",  # an unclosed fence
        "  ```\n  <img src=w onerror=alert(7)>\n  ```",  # an indented fence
    ],
)
def test_runbook_text_gets_no_raw_html_past_markdowns_idea_of_code(tmp_path, impact):
    """Each of these once passed raw HTML: modelmon guessed code spans where Markdown sees none."""
    text = MINIMAL + "    runbook:\n      impact: |\n" + "".join(f"        {line}\n" for line in impact.splitlines())
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "x.yaml").write_text(text)
    page = build.compile_all(tmp_path).files["runbooks/SvcAvailabilityBudgetBurn.md"]
    found = rendered(page)
    assert "img" not in {tag for tag, _ in found.tags}
    assert all(not name.startswith("on") for _, attrs in found.tags for name in attrs)


# --- Found by review: more ways in, each now a positioned error ------------------------------


@pytest.mark.parametrize(
    "before",
    ["%FOO bar\n---\n", 'x: "\\uD800"\n'],  # text libyaml's scanner refuses but PyYAML reads
)
def test_deep_nesting_is_refused_whichever_scanner_reads_the_file(tmp_path, before):
    out = refused(tmp_path, before + "y: " + "[" * 900 + "]" * 900 + "\n")
    assert f"nested more than {limits.MAX_DEPTH} levels deep" in out


@pytest.mark.parametrize(
    ("selector", "escape"),
    [("'model=\"\\uD800\"'", "\\uD800"), ("'model=\"\\U00110000\"'", "\\U00110000")],
)
def test_an_escape_that_is_no_character_is_refused(tmp_path, selector, escape):
    [error] = errors_in(tmp_path, with_selector(selector))
    assert error.endswith(f"model=: {escape} is not an escape PromQL knows")


def test_a_lone_surrogate_in_a_value_is_refused(tmp_path):
    text = MINIMAL.replace("objective: 99", 'objective: 99\n    description: "a\\uD800b"')
    [error] = errors_in(tmp_path, text)
    assert error == f"slos/x.yaml:{after(text, 'description: ')}: slos[0].description: holds an unpaired UTF-16 " + (
        "surrogate (\\uD800-\\uDFFF), which is not text"
    )


def test_an_alert_name_too_long_for_a_file_is_refused_though_each_part_is_short(tmp_path):
    text = MINIMAL.replace("service: svc", "service: svc\nalert_prefix: A" + "p" * 119).replace(
        "name: availability", "name: a" + "v" * 119
    )
    errors = errors_in(tmp_path, text)
    assert errors and all(f"more than {limits.MAX_NAME_CHARS} (it names its runbook page's file)" in e for e in errors)


def test_a_file_name_with_a_unicode_line_separator_is_refused(tmp_path):
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "m\u2028extra_key: injected\u2028#.yaml").write_text(MINIMAL)
    [error] = errors_of(tmp_path)
    assert error.endswith(":1:1: the file name holds a control character or line break; rename the file")


@pytest.mark.parametrize(
    ("receiver", "secret"),
    [
        ("webhook: {url: 'https://token:S3CRETVALUE99@hooks.example.com/x'}", "S3CRETVALUE99"),
        ("webhook: {url: 'https://hooks.example.com/x#access_token=S3CRETVALUE99'}", "S3CRETVALUE99"),
        ("pagerduty: {routing_key_file: 12345678901234567890}", "12345678901234567890"),
        ("slack: {api_url_file: [https://hooks.slack.com/services/SECRETX], channel: '#a'}", "SECRETX"),
    ],
)
def test_a_secret_in_the_wrong_shape_is_refused_without_showing_it(tmp_path, receiver, secret):
    text = with_receiver(receiver)
    errors = errors_in(tmp_path, text)
    assert errors and all(secret not in error for error in errors), errors
