"""Spec validation: every problem is reported with file, line, column and field path, all in one run.

Each test writes small specs into a throwaway project and compares the exact error
text. Expected positions are computed from the YAML text itself with `at()`, so a
test reads as "the error points at this token".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon import build, cli, loader
from modelmon.checks import check_all
from modelmon.loader import SpecErrors, load_file
from tests import fuzz_specs
from tests.conftest import REPO

# --- helpers ------------------------------------------------------------------------


def spec(text: str) -> str:
    """A YAML spec written indented inside a test, as it will be on disk."""
    return textwrap.dedent(text).lstrip("\n")


def write_specs(root: Path, specs: dict[str, str]) -> Path:
    folder = root / "slos"
    folder.mkdir(exist_ok=True)
    for name, text in specs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return root


def errors_of(root: Path) -> list[str]:
    """Every error `load_all` (parsing, validation and cross-checks) reports, as printed."""
    try:
        build.load_all(root)
    except SpecErrors as err:
        return [str(e) for e in err.errors]
    return []


def errors_in(tmp_path: Path, text: str, name: str = "x.yaml") -> list[str]:
    return errors_of(write_specs(tmp_path, {name: text}))


def at(text: str, needle: str, part: str | None = None, occurrence: int = 1) -> str:
    """'line:column' (1-based) of `part` inside the `occurrence`-th `needle` of `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    if part is not None:
        index += needle.index(part)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"


def after(text: str, needle: str, occurrence: int = 1) -> str:
    """'line:column' of the character right after the `occurrence`-th `needle` (where its value starts)."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return at(text[: index + len(needle)] + "\x00", "\x00")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root (folders as None) with its bytes."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


WINDOW_MESSAGE = "must contain the {{.window}} placeholder where the range goes"
RESERVED = "label {!r} is set by modelmon on every generated series; choose another name"
RESERVED_ALERT = "label {!r} is set by modelmon on every generated alert; choose another name"
WHOLE_MINUTES = "must be whole minutes (got {}): the generated tests evaluate rules once a minute"
TOO_SHORT = "window {} is shorter than twice the scrape interval ({}): rate() would see fewer than two samples"
SUPPORTED = "use {{ $labels.NAME }}, {{ $labels.NAME | urlquery }}, {{ $value }} and {{ $value | humanizePercentage }}"


def test_position_helper_counts_lines_and_columns_from_one():
    text = "a: 1\nbb:\n  ccc: 100.5\n"
    assert at(text, "100.5") == "3:8"
    assert at(text, "ccc: 100.5", "100.5") == "3:8"
    assert at(text, "a") == "1:1"
    assert after(text, "ccc: ") == "3:8"


# --- field values --------------------------------------------------------------------


OBJECTIVE_100_5 = spec(
    """
    version: modelmon/v1
    service: svc
    slos:
      - name: availability
        objective: 100.5
        sli:
          availability: {}
    """
)


def test_objective_above_100_names_file_line_column_and_field(tmp_path):
    assert at(OBJECTIVE_100_5, "100.5") == "5:16"
    assert errors_in(tmp_path, OBJECTIVE_100_5) == [
        "slos/x.yaml:5:16: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)"
    ]


@pytest.mark.parametrize("objective", ["100", "0", "-1"])
def test_objective_of_0_or_100_or_below_is_out_of_range(tmp_path, objective):
    text = OBJECTIVE_100_5.replace("100.5", objective)
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'objective: ')}: slos[0].objective: "
        f"must be between 0 and 100 exclusive (got {objective})"
    ]


def test_missing_required_fields_are_reported_at_the_mapping_that_lacks_them(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        slos:
          - name: availability
            sli:
              availability: {}
        """
    )
    assert errors_in(tmp_path, text) == [
        "slos/x.yaml:1:1: service: is required",
        f"slos/x.yaml:{at(text, 'name: availability')}: slos[0].objective: is required",
    ]


def test_unknown_version_lists_the_accepted_ones(tmp_path):
    text = OBJECTIVE_100_5.replace("100.5", "99").replace("modelmon/v1", "prometheus/v2")
    assert errors_in(tmp_path, text) == [
        "slos/x.yaml:1:10: version: must be 'prometheus/v1' or 'modelmon/v1' (got 'prometheus/v2')"
    ]


# --- unknown keys --------------------------------------------------------------------


def test_misspelt_key_is_reported_at_the_key_with_the_closest_field_suggested(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
          - name: errors
            objectve: 95
            objective: 95
            sli:
              error_rate: {}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'objectve')}: slos[1].objectve: unknown field 'objectve'; did you mean 'objective'?"
    ]
    assert at(text, "objectve") == "9:5"


def test_unknown_key_without_a_close_match_lists_the_expected_keys(tmp_path):
    text = OBJECTIVE_100_5.replace("objective: 100.5", "objective: 99\n    colour: blue")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'colour')}: slos[0].colour: unknown field 'colour'; "
        "expected one of alerting, description, labels, name, objective, period, plugins, runbook, sli"
    ]


def test_misspelt_key_in_a_nested_block_suggests_that_blocks_field_by_its_yaml_name(tmp_path):
    # threshold_alert's `for` is `for_` in Python: the suggestion must use the YAML spelling.
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              threshold_alert:
                fr: 10m
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'fr: 10m')}: slos[0].alerting.threshold_alert.fr: "
        "unknown field 'fr'; did you mean 'for'?"
    ]


# --- several errors, several files: one run, nothing written ------------------------------

ALPHA_WITH_FOUR_ERRORS = spec(
    """
    version: modelmon/v1
    service: alpha
    labels:
      bad-name: x
    slos:
      - name: availability
        objective: 100.5
        sli:
          availability: {}
      - name: errors
        objectve: 95
        sli:
          error_rate: {}
    """
)
BETA_WITH_TWO_ERRORS = spec(
    """
    version: prometheus/v2
    service: beta
    slos:
      - name: latency
        objective: 95
        period: 30 days
        sli:
          latency:
            threshold_ms: 5000
    """
)
ALL_SIX_ERRORS = [
    "slos/a.yaml:4:3: labels.bad-name: 'bad-name' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
    "slos/a.yaml:7:16: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)",
    "slos/a.yaml:10:5: slos[1].objective: is required",
    "slos/a.yaml:11:5: slos[1].objectve: unknown field 'objectve'; did you mean 'objective'?",
    "slos/b.yaml:1:10: version: must be 'prometheus/v1' or 'modelmon/v1' (got 'prometheus/v2')",
    "slos/b.yaml:6:13: slos[0].period: '30 days' is not a duration like 30s, 5m, 1h30m or 30d",
]


def test_the_expected_positions_of_the_multi_file_run_match_the_yaml_text():
    a, b = ALPHA_WITH_FOUR_ERRORS, BETA_WITH_TWO_ERRORS
    assert [e.split(": ", 1)[0] for e in ALL_SIX_ERRORS] == [
        f"slos/a.yaml:{at(a, 'bad-name')}",
        f"slos/a.yaml:{at(a, '100.5')}",
        f"slos/a.yaml:{at(a, 'name: errors')}",
        f"slos/a.yaml:{at(a, 'objectve')}",
        f"slos/b.yaml:{at(b, 'prometheus/v2')}",
        f"slos/b.yaml:{at(b, '30 days')}",
    ]


def test_build_reports_every_error_of_every_file_once_sorted_and_writes_nothing(tmp_path, capsys):
    root = write_specs(tmp_path, {"b.yaml": BETA_WITH_TWO_ERRORS, "a.yaml": ALPHA_WITH_FOUR_ERRORS})
    (root / "rules").mkdir()
    (root / "rules" / "sentinel.yml").write_bytes(b"# hand-written, must survive a failed build\ngroups: []\n")
    before = snapshot(root)

    assert cli.main(["--root", str(root), "build"]) == cli.EXIT_SPEC == 2

    captured = capsys.readouterr()
    assert captured.err == "\n".join([*ALL_SIX_ERRORS, "6 errors; nothing was written"]) + "\n"
    assert captured.out == ""
    assert snapshot(root) == before
    assert (
        root / "rules" / "sentinel.yml"
    ).read_bytes() == b"# hand-written, must survive a failed build\ngroups: []\n"


@pytest.mark.parametrize("argv", [["validate"], ["build", "--check"]])
def test_validate_and_check_report_the_same_errors_and_exit_2(tmp_path, capsys, argv):
    root = write_specs(tmp_path, {"a.yaml": ALPHA_WITH_FOUR_ERRORS, "b.yaml": BETA_WITH_TWO_ERRORS})
    before = snapshot(root)

    assert cli.main(["--root", str(root), *argv]) == 2

    assert capsys.readouterr().err.splitlines() == [*ALL_SIX_ERRORS, "6 errors; nothing was written"]
    assert snapshot(root) == before


def test_a_single_error_is_counted_in_the_singular(tmp_path, capsys):
    root = write_specs(tmp_path, {"x.yaml": OBJECTIVE_100_5})
    assert cli.main(["--root", str(root), "validate"]) == 2
    assert capsys.readouterr().err == (
        "slos/x.yaml:5:16: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)\n"
        "1 error; nothing was written\n"
    )


# --- one run reports every independent mistake, whatever stage finds it ---------------------

# A wrong type (found by pydantic), a threshold order inside one SLO, a name two SLOs share and a
# period too short for the default windows (found by the checks): each in its own SLO.
FOUR_STAGES = spec(
    """
    version: modelmon/v1
    service: svc
    slos:
      - name: availability
        objective: high
        sli:
          availability: {}
      - name: errors
        objective: 95
        sli:
          availability:
            warning_below: 95
            critical_below: 97
      - name: errors
        objective: 99
        sli:
          error_rate: {}
      - name: latency
        objective: 95
        period: 1d
        sli:
          latency:
            threshold_ms: 5000
    """
)


def test_a_type_error_hides_neither_the_checks_of_other_slos_nor_those_across_them(tmp_path, capsys):
    text = FOUR_STAGES
    root = write_specs(tmp_path, {"x.yaml": text})
    before = snapshot(root)

    assert cli.main(["--root", str(root), "build"]) == cli.EXIT_SPEC

    assert capsys.readouterr().err.splitlines() == [
        "slos/x.yaml:5:16: slos[0].objective: must be a valid decimal (got 'high')",
        "slos/x.yaml:12:24: slos[1].sli.availability.warning_below: must be above critical_below",
        "slos/x.yaml:14:11: slos[2].name: duplicate SLO name 'errors' (also slos[1])",
        "slos/x.yaml:20:13: slos[3].period: must be longer than the longest default burn-rate window (3d); "
        "set alerting.windows for shorter periods",
        "4 errors; nothing was written",
    ]
    assert [at(text, "high"), at(text, "warning_below: 95", "95"), at(text, "errors", occurrence=2)] == [
        "5:16",
        "12:24",
        "14:11",
    ]
    assert at(text, "period: 1d", "1d") == "20:13"
    assert snapshot(root) == before


def test_checks_across_files_judge_the_parts_of_each_file_that_validated(tmp_path):
    # Each file has a broken part (an SLO, a top-level field); what stays sound is still compared
    # across files (dashboard uid) and planned (alert names in a service, test traffic the selector accepts).
    alpha = spec(
        """
        version: modelmon/v1
        service: alpha
        dashboard: {}
        slos:
          - name: availability
            objective: 100.5
            sli:
              availability: {}
          - name: errors
            objective: 95
            sli:
              error_rate: {}
            alerting:
              name: SharedBudgetBurn
        """
    )
    beta = spec(
        """
        version: modelmon/v1
        service: beta
        labels:
          bad-name: x
        dashboard: {}
        slos:
          - name: errors
            objective: 95
            sli:
              error_rate: {}
            alerting:
              name: SharedBudgetBurn
          - name: impossible
            objective: 99
            sli:
              availability:
                selector: model="a",model="b"
          - name: errors-again
            objective: 99
            sli:
              error_rate: {}
            alerting:
              name: SharedBudgetBurn
        """
    )
    root = write_specs(tmp_path, {"alpha.yaml": alpha, "beta.yaml": beta})
    assert errors_of(root) == [
        f"slos/alpha.yaml:{at(alpha, '100.5')}: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)",
        f"slos/beta.yaml:{at(beta, 'bad-name')}: labels.bad-name: "
        "'bad-name' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
        f"slos/beta.yaml:{at(beta, '{}')}: dashboard.uid: dashboard uid 'models-monitoring' is also used by "
        "slos/alpha.yaml",
        f"slos/beta.yaml:{at(beta, 'model=')}: slos[1].sli.availability.selector: no test value for label 'model' "
        "satisfies the selector; use matchers that a plain value can satisfy",
        f"slos/beta.yaml:{at(beta, 'name: SharedBudgetBurn', occurrence=2)}: slos[2].alerting: "
        "alert name 'SharedBudgetBurn' is already used by SLO 'errors' of the same service (slos/beta.yaml, slos[0]); "
        "set alerting.name, alerting.threshold_alert.name, alerting.outage_alert.name or alerting.budget_alert.name "
        "to tell them apart",
    ]


WINDOW_OF_ONE_MINUTE = """\
    alerting:
      windows:
        - {severity: page, long: 1h, short: 1m, budget_percent: 2, for: 2m}
"""


@pytest.mark.parametrize(
    ("broken", "at_token", "reported"),
    [
        (
            "scrape_interval: 1 minute",
            "1 minute",
            "scrape_interval: '1 minute' is not a duration like 30s, 5m, 1h30m or 30d",
        ),
        # Misspelt, the field is at its default (1m), which the 1m window would wrongly be judged against.
        (
            "scrape_intervl: 10s",
            "scrape_intervl",
            "scrape_intervl: unknown field 'scrape_intervl'; did you mean 'scrape_interval'?",
        ),
    ],
    ids=["wrong-type", "misspelt"],
)
def test_checks_that_read_a_broken_field_are_left_out_and_the_others_still_run(tmp_path, broken, at_token, reported):
    text = threshold_file("availability", warning_below="95", critical_below="97")
    text = text.replace("slos:\n", f"{broken}\nslos:\n") + WINDOW_OF_ONE_MINUTE
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, at_token)}: {reported}",
        f"slos/x.yaml:{at(text, 'warning_below: 95', '95')}: slos[0].sli.availability.warning_below: "
        "must be above critical_below",
    ]


@pytest.mark.parametrize(
    ("good_head", "broken_head", "reported"),
    [
        (
            "service: shop",
            "service: shop!",
            "service: must start with a letter or digit and hold only letters, digits, '-', '_' and '.' (got 'shop!')",
        ),
        (
            "service: alpha\nalert_prefix: Shop",
            "service: shop\nalert_prefix: Shop!",
            "alert_prefix: must be an alert name like ModelAvailabilityBudgetBurn (got 'Shop!')",
        ),
    ],
    ids=["service", "alert_prefix"],
)
def test_a_broken_service_or_alert_prefix_skips_comparing_the_alert_names_derived_from_it(
    tmp_path, good_head, broken_head, reported
):
    # Default alert names come from alert_prefix, else the service: without it they would be guesses,
    # here ShopRequestsBudgetExhausted in both files.
    good = events_file("x", "BurnA").replace("service: x", good_head)
    broken = events_file("x", "BurnB").replace("service: x", broken_head)
    root = write_specs(tmp_path, {"a.yaml": good, "b.yaml": broken})
    token = broken_head.rsplit(": ", 1)[1]
    assert errors_of(root) == [f"slos/b.yaml:{at(broken, token)}: {reported}"]


def test_yaml_level_mistakes_hide_nothing_else_and_are_not_repeated_by_validation(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        labels: {team: a, team: b}
        slos:
          - name: availability
            objective: !percent 99
            sli:
              availability: {}
          - name: errors
            objective: 100.5
            sli:
              error_rate: {}
          - name: latency
            objective: 95
            sli:
              latency:
                threshold_ms: 1200
        """
    )
    errors = errors_in(tmp_path, text)
    assert [e.split(": ", 2)[:2] for e in errors] == [
        [f"slos/x.yaml:{at(text, 'team: b')}", "labels.team"],
        [f"slos/x.yaml:{at(text, '!percent')}", "slos[0].objective"],
        [f"slos/x.yaml:{at(text, '100.5')}", "slos[1].objective"],
        [f"slos/x.yaml:{at(text, '1200')}", "slos[2].sli.latency.threshold_ms"],
    ]
    assert errors[0].endswith("duplicate key 'team'")
    assert "!percent" in errors[1]


# --- duplicates ----------------------------------------------------------------------------


def test_duplicate_slo_name_is_reported_at_the_second_name(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
          - name: availability
            objective: 98
            sli:
              availability: {}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'name: availability', 'availability', occurrence=2)}: slos[1].name: "
        "duplicate SLO name 'availability' (also slos[0])"
    ]


def test_alert_name_shared_by_two_slos_of_a_file_is_reported_on_the_second(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              name: SvcBudgetBurn
          - name: errors
            objective: 95
            sli:
              error_rate: {}
            alerting:
              name: SvcBudgetBurn
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'name: SvcBudgetBurn', occurrence=2)}: slos[1].alerting: "
        "alert name 'SvcBudgetBurn' is already used by SLO 'availability' of the same service (slos/x.yaml, slos[0]); "
        "set alerting.name, alerting.threshold_alert.name, alerting.outage_alert.name or alerting.budget_alert.name "
        "to tell them apart"
    ]


def test_default_alert_names_that_collide_are_reported(tmp_path):
    # api-x and api_x are different SLO names but both CamelCase to ApiX.
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: api-x
            objective: 99
            sli:
              raw:
                error_ratio_query: job:errors:ratio_rate{{.window}}
          - name: api_x
            objective: 99
            sli:
              raw:
                error_ratio_query: job:errors:ratio_rate{{.window}}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'name: api_x')}: slos[1].alerting: "
        "alert name 'SvcApiXBudgetBurn' is already used by SLO 'api-x' of the same service (slos/x.yaml, slos[0]); "
        "set alerting.name, alerting.threshold_alert.name, alerting.outage_alert.name or alerting.budget_alert.name "
        "to tell them apart",
        f"slos/x.yaml:{at(text, 'name: api_x')}: slos[1].alerting: "
        "alert name 'SvcApiXBudgetExhausted' is already used by SLO 'api-x' of the same service "
        "(slos/x.yaml, slos[0]); set alerting.name, alerting.threshold_alert.name, alerting.outage_alert.name or "
        "alerting.budget_alert.name to tell them apart",
        f"slos/x.yaml:{at(text, 'name: api_x')}: slos[1].alerting: "
        "alert name 'SvcApiXOutage' is already used by SLO 'api-x' of the same service (slos/x.yaml, slos[0]); "
        "set alerting.name, alerting.threshold_alert.name, alerting.outage_alert.name or alerting.budget_alert.name "
        "to tell them apart",
    ]


def events_file(service: str, alert: str) -> str:
    return spec(
        f"""
        version: prometheus/v1
        service: {service}
        slos:
          - name: requests
            objective: 99.9
            sli:
              events:
                error_query: sum(rate(http_requests_total{{code=~"5.."}}[{{{{.window}}}}]))
                total_query: sum(rate(http_requests_total[{{{{.window}}}}]))
            alerting:
              name: {alert}
        """
    )


def test_service_defined_in_two_files_is_reported_on_the_second_file(tmp_path):
    first, second = events_file("shop", "ShopBurnA"), events_file("shop", "ShopBurnB")
    root = write_specs(tmp_path, {"a.yaml": first, "b.yaml": second})
    assert errors_of(root) == [
        f"slos/b.yaml:{at(second, 'service: shop', 'shop')}: service: "
        f"service 'shop' is also defined in slos/a.yaml:{at(first, 'service: shop', 'shop')}; each service compiles "
        "to its own rules file"
    ]


def test_threshold_alert_named_like_the_burn_rate_alert_is_rejected(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              name: SvcAvailability
              threshold_alert:
                name: SvcAvailability
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'name: SvcAvailability', 'SvcAvailability', occurrence=2)}: "
        "slos[0].alerting.threshold_alert.name: must differ from the burn-rate alert name"
    ]


# --- SLIs --------------------------------------------------------------------------------


def test_events_queries_without_the_window_placeholder_are_each_reported(tmp_path):
    text = spec(
        """
        version: prometheus/v1
        service: svc
        slos:
          - name: requests
            objective: 99.9
            sli:
              events:
                error_query: sum(rate(http_requests_total{code=~"5.."}[5m]))
                total_query: sum(rate(http_requests_total[5m]))
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'sum(rate(http_requests_total{')}: slos[0].sli.events.error_query: {WINDOW_MESSAGE}",
        f"slos/x.yaml:{at(text, 'sum(rate(http_requests_total[')}: slos[0].sli.events.total_query: {WINDOW_MESSAGE}",
    ]


def test_raw_query_without_the_window_placeholder_is_reported(tmp_path):
    text = spec(
        """
        version: prometheus/v1
        service: svc
        slos:
          - name: requests
            objective: 99.9
            sli:
              raw:
                error_ratio_query: job:http_errors:ratio_rate5m
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'job:http')}: slos[0].sli.raw.error_ratio_query: {WINDOW_MESSAGE}"
    ]


def test_window_placeholder_may_have_spaces_inside_the_braces(tmp_path):
    text = spec(
        """
        version: prometheus/v1
        service: svc
        slos:
          - name: requests
            objective: 99.9
            sli:
              events:
                error_query: sum(rate(errors_total[{{ .window }}]))
                total_query: sum(rate(requests_total[{{.window}}]))
        """
    )
    assert errors_in(tmp_path, text) == []


def test_empty_or_blank_queries_are_rejected(tmp_path):
    text = spec(
        """
        version: prometheus/v1
        service: svc
        slos:
          - name: requests
            objective: 99.9
            sli:
              events:
                error_query: ""
                total_query: "   "
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'error_query: ')}: slos[0].sli.events.error_query: must not be empty",
        f"slos/x.yaml:{after(text, 'total_query: ')}: slos[0].sli.events.total_query: must not be empty",
    ]


def test_sli_without_any_kind_is_rejected(tmp_path):
    text = OBJECTIVE_100_5.replace("100.5", "99").replace("sli:\n      availability: {}", "sli: {}")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'sli: {}', '{}')}: slos[0].sli: "
        "needs exactly one of events, raw, availability, error_rate, latency (found none)"
    ]


def test_sli_with_two_kinds_lists_both(tmp_path):
    text = OBJECTIVE_100_5.replace("100.5", "99").replace(
        "availability: {}", "availability: {}\n      latency:\n        threshold_ms: 5000"
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'availability: {}')}: slos[0].sli: "
        "needs exactly one of events, raw, availability, error_rate, latency (found availability, latency)"
    ]


def test_sloth_plugin_sli_is_rejected_with_a_clear_message(tmp_path):
    text = spec(
        """
        version: prometheus/v1
        service: k8s-apiserver
        slos:
          - name: requests-availability
            objective: 99.9
            sli:
              plugin:
                id: sloth-common/kubernetes/apiserver/availability
                options:
                  filter: verb!="WATCH"
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'id: sloth')}: slos[0].sli.plugin: "
        "Sloth SLI plugin 'sloth-common/kubernetes/apiserver/availability' is Go code modelmon cannot run: write the "
        "query it makes (`sloth generate` shows it in the slo:sli_error:ratio_rate5m rule) as "
        "sli.raw.error_ratio_query, or as sli.events with error_query and total_query, each with {{.window}} where "
        "the range goes"
    ]


LATENCY = spec(
    """
    version: modelmon/v1
    service: svc
    slos:
      - name: latency
        objective: 95
        sli:
          latency:
            threshold_ms: THRESHOLD
    """
)


@pytest.mark.parametrize(
    ("threshold", "nearest"),
    [("1200", "1000 and 2500"), ("75", "50 and 100"), ("999.5", "500 and 1000")],
)
def test_latency_threshold_off_the_buckets_names_the_nearest_bounds(tmp_path, threshold, nearest):
    text = LATENCY.replace("THRESHOLD", threshold)
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, threshold)}: slos[0].sli.latency.threshold_ms: "
        f"{threshold} ms is not a bucket bound of model_latency_ms; the nearest bounds are {nearest}"
    ]
    assert at(text, threshold) == "8:23"


@pytest.mark.parametrize("threshold", ["25", "1000", "1000.0", "300000"])
def test_latency_threshold_on_a_bucket_bound_is_accepted(tmp_path, threshold):
    assert errors_in(tmp_path, LATENCY.replace("THRESHOLD", threshold)) == []


def test_latency_threshold_above_every_bucket_is_shown_as_written(tmp_path):
    # 1000000 must not come back as 1e+06: people search their file for the number they wrote.
    text = LATENCY.replace("THRESHOLD", "1000000")
    [error] = errors_in(tmp_path, text)
    assert error.startswith(
        "slos/x.yaml:8:23: slos[0].sli.latency.threshold_ms: 1000000 ms is not a bucket bound of model_latency_ms; "
    )
    assert error.endswith("300000")


def threshold_file(kind: str, **fields: str) -> str:
    lines = "".join(f"        {name}: {value}\n" for name, value in fields.items())
    return (
        "version: modelmon/v1\nservice: svc\nslos:\n"
        f"  - name: models\n    objective: 95\n    sli:\n      {kind}:\n{lines}"
    )


@pytest.mark.parametrize("critical", ["10", "8"])
def test_error_rate_warning_must_be_below_critical(tmp_path, critical):
    text = threshold_file("error_rate", warning_above="10", critical_above=critical)
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'warning_above: 10', '10')}: slos[0].sli.error_rate.warning_above: "
        "must be below critical_above"
    ]


@pytest.mark.parametrize("critical", ["95", "97"])
def test_availability_warning_must_be_above_critical(tmp_path, critical):
    text = threshold_file("availability", warning_below="95", critical_below=critical)
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'warning_below: 95', '95')}: slos[0].sli.availability.warning_below: "
        "must be above critical_below"
    ]


def test_a_disabled_threshold_level_is_not_compared(tmp_path):
    text = threshold_file("error_rate", warning_above="10", critical_above="null")
    assert errors_in(tmp_path, text) == []


# --- labels -------------------------------------------------------------------------------


def test_label_names_prometheus_refuses_and_empty_values_are_reported(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        labels:
          bad-name: x
          __reserved: y
          team: ""
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'bad-name')}: labels.bad-name: "
        "'bad-name' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
        f"slos/x.yaml:{at(text, '__reserved')}: labels.__reserved: "
        "'__reserved': names starting with __ are reserved by Prometheus",
        f"slos/x.yaml:{after(text, 'team: ')}: labels.team: "
        "an empty label value is the same as no label in Prometheus; remove the label instead",
    ]


def test_bad_label_names_in_alert_blocks_are_reported_at_the_key(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              page_alert:
                labels:
                  routing-key: team-a
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'routing-key')}: slos[0].alerting.page_alert.labels.routing-key: "
        "'routing-key' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
    ]


def test_labels_modelmon_sets_itself_are_reserved(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        labels:
          service: other
        slos:
          - name: availability
            objective: 99
            labels:
              slo: other
              sli_selector: mine
            sli:
              availability:
                group_by: [model, service]
            alerting:
              labels:
                alertname: Other
              page_alert:
                labels:
                  long_window: 1h
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'service: other')}: labels.service: {RESERVED.format('service')}",
        f"slos/x.yaml:{at(text, 'slo: other')}: slos[0].labels.slo: {RESERVED.format('slo')}",
        f"slos/x.yaml:{at(text, 'sli_selector')}: slos[0].labels.sli_selector: {RESERVED.format('sli_selector')}",
        f"slos/x.yaml:{at(text, '[model, service]')}: slos[0].sli.availability.group_by: {RESERVED.format('service')}",
        f"slos/x.yaml:{at(text, 'alertname')}: slos[0].alerting.labels.alertname: {RESERVED_ALERT.format('alertname')}",
        f"slos/x.yaml:{at(text, 'long_window')}: slos[0].alerting.page_alert.labels.long_window: "
        f"{RESERVED_ALERT.format('long_window')}",
    ]


# Every block whose labels land on an SLO's series or alerts: its field path, and where in
# LABELLED the line setting LABELS there goes.
LABEL_BLOCKS = {
    "labels": ("file", "labels: LABELS"),
    "slos[0].labels": ("slo", "    labels: LABELS"),
    "slos[0].alerting.labels": ("alerting", "      labels: LABELS"),
    **{
        f"slos[0].alerting.{block}.labels": ("alerting", f"      {block}: {{labels: LABELS}}")
        for block in ("page_alert", "ticket_alert", "threshold_alert", "budget_alert", "outage_alert")
    },
}
LABELLED = spec(
    """
    version: modelmon/v1
    service: svc
    {file}
    slos:
      - name: availability
        objective: 99
    {slo}
        sli:
          availability:
            group_by: [model, region]
        alerting:
          name: SvcAvailabilityBudgetBurn
    {alerting}
    """
)


def with_labels(field: str, labels: str) -> str:
    """One SLO grouped by model and region, with `labels` set in the block `field`."""
    place, line = LABEL_BLOCKS[field]
    return LABELLED.format(
        **{p: line.replace("LABELS", labels) if p == place else "" for p in ("file", "slo", "alerting")}
    )


@pytest.mark.parametrize("field", LABEL_BLOCKS)
def test_every_block_of_labels_refuses_the_labels_modelmon_sets_on_series_and_alerts(tmp_path, field):
    text = with_labels(field, "{slo: mine, short_window: 1m}")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'slo: mine')}: {field}.slo: {RESERVED.format('slo')}",
        f"slos/x.yaml:{at(text, 'short_window')}: {field}.short_window: {RESERVED_ALERT.format('short_window')}",
    ]


@pytest.mark.parametrize("field", LABEL_BLOCKS)
def test_no_block_of_labels_may_set_a_label_the_slo_is_grouped_by(tmp_path, field):
    text = with_labels(field, "{region: eu}")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'region: eu')}: {field}.region: label 'region' is a group_by label of SLO "
        "'availability' (slos[0].sli.availability.group_by): each region is its own SLO series and alert, "
        "and one value set here would merge them all; remove it or rename it"
    ]


def test_label_key_that_yaml_reads_as_a_number_is_read_as_its_text_and_refused_as_a_label_name(tmp_path):
    text = OBJECTIVE_100_5.replace("100.5", "99").replace("slos:", "labels:\n  1: x\nslos:")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, '1: x')}: labels.1: '1' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
    ]


# --- windows ------------------------------------------------------------------------------


def scrape_file(scrape_interval: str, slos: int = 1) -> str:
    blocks = "".join(f"  - name: slo-{i}\n    objective: 99\n    sli:\n      availability: {{}}\n" for i in range(slos))
    return f"version: modelmon/v1\nservice: svc\nscrape_interval: {scrape_interval}\nslos:\n{blocks}"


def test_scrape_interval_too_long_for_the_default_windows_points_at_scrape_interval(tmp_path):
    text = scrape_file("10m")
    where = at(text, "scrape_interval: 10m", "10m")
    assert where == "3:18"
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{where}: scrape_interval: must be at most half of the shortest window, 5m (got 10m): "
        "rate() would see fewer than two samples",
    ]


def test_scrape_interval_errors_are_reported_once_however_many_slos_share_it(tmp_path):
    text = scrape_file("10m", slos=2)
    where = at(text, "scrape_interval: 10m", "10m")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{where}: scrape_interval: must be at most half of the shortest window, 5m (got 10m): "
        "rate() would see fewer than two samples",
    ]


def windows_file(windows: str, scrape_interval: str = "1m") -> str:
    return spec(
        f"""
        version: modelmon/v1
        service: svc
        scrape_interval: {scrape_interval}
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {{}}
            alerting:
              windows:
        """
    ) + textwrap.indent(spec(windows), " " * 8)


def test_custom_window_shorter_than_twice_the_scrape_interval_points_at_the_window(tmp_path):
    text = windows_file(
        """
        - severity: page
          long: 1h
          short: 3m
          budget_percent: 2
          for: 2m
        """,
        scrape_interval="2m",
    )
    where = at(text, "short: 3m", "3m")
    assert where == "13:18"
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{where}: slos[0].alerting.windows[0].short: {TOO_SHORT.format('3m', '2m')}"
    ]


def test_custom_window_with_short_not_shorter_than_long_is_rejected(tmp_path):
    text = windows_file(
        """
        - severity: page
          long: 1h
          short: 5m
          budget_percent: 2
          for: 2m
        - severity: ticket
          long: 30m
          short: 30m
          budget_percent: 10
          for: 5m
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'short: 30m', '30m')}: slos[0].alerting.windows[1].short: "
        "must be shorter than long (30m)"
    ]


def test_custom_window_not_shorter_than_the_period_is_rejected(tmp_path):
    text = windows_file(
        """
        - severity: ticket
          long: 30d
          short: 6h
          budget_percent: 10
          for: 1h
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'long: 30d', '30d')}: slos[0].alerting.windows[0].long: "
        "must be shorter than the SLO period (30d)"
    ]


def test_windows_and_for_durations_must_be_whole_minutes(tmp_path):
    text = windows_file(
        """
        - severity: page
          long: 1h30s
          short: 5m
          budget_percent: 2
          for: 90s
        """
    ).replace("    alerting:\n", "    alerting:\n      threshold_alert:\n        for: 150s\n")
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, '150s')}: slos[0].alerting.threshold_alert.for: {WHOLE_MINUTES.format('150s')}",
        f"slos/x.yaml:{at(text, '1h30s')}: slos[0].alerting.windows[0].long: {WHOLE_MINUTES.format('1h30s')}",
        f"slos/x.yaml:{at(text, '90s')}: slos[0].alerting.windows[0].for: {WHOLE_MINUTES.format('90s')}",
    ]


def test_period_shorter_than_the_default_windows_points_at_the_period(tmp_path):
    # The default 1d/2h and 3d/6h windows do not fit in a 1d period. The user wrote no
    # window and the scrape interval is fine: the field to fix is the period.
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            period: 1d
            sli:
              availability: {}
        """
    )
    errors = errors_in(tmp_path, text)
    assert errors, "a 1d period cannot hold the default 3d window"
    assert len(errors) == len(set(errors)), f"the same error is reported twice: {errors}"
    prefix = f"slos/x.yaml:{at(text, 'period: 1d', '1d')}: slos[0].period: "
    assert all(e.startswith(prefix) for e in errors), errors
    assert "3d" in " ".join(errors)


# --- YAML itself -------------------------------------------------------------------------


HEAD = "version: modelmon/v1\nservice: svc\nslos:\n  - name: a\n"


@pytest.mark.parametrize(
    ("text", "token", "where", "message"),
    [
        pytest.param(
            "version: modelmon/v1\nservice: svc\nslos:\n\t- name: a\n",
            "\t",
            "4:1",
            "while scanning for the next token found character '\\t' that cannot start any token",
            id="tab",
        ),
        # PyYAML notices the unclosed bracket at the next line's ':', the unclosed quote at the end of the file.
        pytest.param(
            HEAD + "    objective: [99\n    sli: {}\n",
            "[99",
            "5:16",
            "while parsing a flow sequence expected ',' or ']', but got ':' (at 6:8)",
            id="unclosed-bracket",
        ),
        pytest.param(
            HEAD + "    sli: {availability: {}\n    objective: 99\n",
            "{availability",
            "5:10",
            "while parsing a flow mapping expected ',' or '}', but got '<scalar>' (at 6:5)",
            id="unclosed-brace",
        ),
        pytest.param(
            'version: modelmon/v1\nservice: "svc\n',
            '"svc',
            "2:10",
            "while scanning a quoted scalar found unexpected end of stream (at 3:1)",
            id="unclosed-quote",
        ),
        # The next quote in the file closes it, and the text after that quote (a') sticks to it.
        pytest.param(
            "version: modelmon/v1\nservice: 'svc\nslos:\n  - name: 'a'\n",
            "'svc",
            "2:10",
            "the string quoted here runs on to the quote at 4:11; is its closing quote missing?",
            id="unclosed-quote-closed-by-the-next-string",
        ),
        pytest.param(
            "version: modelmon/v1\nservice svc\nslos: []\n",
            "service svc",
            "2:1",
            "while scanning a simple key could not find expected ':' (at 3:1)",
            id="missing-colon",
        ),
        pytest.param(
            HEAD + "    objective 99\n",
            "objective",
            "5:5",
            "while scanning a simple key could not find expected ':' (at 6:1)",
            id="missing-colon-on-the-last-line",
        ),
        pytest.param(
            HEAD + "    objective: 99\n   sli: {}\n",
            "sli",
            "6:4",
            "while parsing a block collection expected <block end>, but found '<block mapping start>'",
            id="indented-less-than-its-siblings",
        ),
        pytest.param(
            "version: modelmon/v1\nservice: svc\nlabels: [a, b}\n",
            "}",
            "3:14",
            "while parsing a flow sequence expected ',' or ']', but got '}'",
            id="wrong-closing-bracket",
        ),
        pytest.param(
            "version: modelmon/v1\nservice: s\x07vc\n",
            "\x07",
            "2:11",
            "unacceptable character #x0007: special characters are not allowed",
            id="control-character",
        ),
    ],
)
def test_yaml_syntax_error_points_at_the_line_and_column_to_fix(tmp_path, text, token, where, message):
    assert at(text, token) == where
    assert errors_in(tmp_path, text) == [f"slos/x.yaml:{where}: YAML syntax error: {message}"]


def test_duplicate_yaml_keys_are_reported_at_the_second_key(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        labels:
          team: a
          team: b
        slos:
          - name: availability
            objective: 99
            objective: 99.9
            sli:
              availability: {}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{at(text, 'team: b')}: labels.team: duplicate key 'team'",
        f"slos/x.yaml:{at(text, 'objective: 99.9')}: slos[0].objective: duplicate key 'objective'",
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"])
def test_empty_file_says_what_it_should_hold(tmp_path, text):
    assert errors_in(tmp_path, text) == [
        "slos/x.yaml:1:1: the file is empty; expected a mapping with version, service and slos"
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [("- version: modelmon/v1\n", "1:1"), ("just text\n", "1:1"), ("# spec\n[1, 2]\n", "2:1")],
    ids=["list", "scalar", "flow-list-after-comment"],
)
def test_top_level_must_be_a_mapping(tmp_path, text, where):
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{where}: the top level must be a mapping with version, service and slos"
    ]


def test_unknown_yaml_tag_is_reported_at_the_value_instead_of_crashing(tmp_path):
    text = OBJECTIVE_100_5.replace("100.5", "!percent 99")
    _, errors = load_file(write_specs(tmp_path, {"x.yaml": text}) / "slos" / "x.yaml", "slos/x.yaml")
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"slos/x.yaml:{at(text, '!percent')}: slos[0].objective: ")
    assert "!percent" in errors[0].message


def test_yaml_merge_keys_are_honoured(tmp_path):
    # `<<: *anchor` is plain YAML 1.1 (yaml.safe_load reads it); Sloth users share blocks this way.
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - &base
            name: availability
            objective: 99
            sli:
              availability: {}
          - <<: *base
            name: availability-strict
            objective: 99.9
        """
    )
    [loaded], errors = load_file(write_specs(tmp_path, {"x.yaml": text}) / "slos" / "x.yaml", "slos/x.yaml")
    assert [str(e) for e in errors] == []
    assert [s.name for s in loaded.spec.slos] == ["availability", "availability-strict"]
    assert loaded.spec.slos[1].sli.availability is not None


# --- annotations ------------------------------------------------------------------------


def test_unsupported_go_template_in_an_annotation_names_the_annotation(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              annotations:
                summary: "Error ratio is {{ $value | humanize }}"
              ticket_alert:
                annotations:
                  description: "{{ .Labels.model }} is failing"
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'summary: ')}: slos[0].alerting.annotations.summary: "
        f"template action {{{{ $value | humanize }}}} is not supported in annotations; {SUPPORTED}",
        f"slos/x.yaml:{after(text, 'description: ')}: slos[0].alerting.ticket_alert.annotations.description: "
        f"template action {{{{ .Labels.model }}}} is not supported in annotations; {SUPPORTED}",
    ]


def test_supported_templates_in_annotations_are_accepted(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: availability
            objective: 99
            sli:
              availability: {}
            alerting:
              annotations:
                summary: "{{ $labels.model }} at {{ $value }} ({{ $value | humanizePercentage }})"
                description: "{{humanizePercentage $value}}"
        """
    )
    assert errors_in(tmp_path, text) == []


# --- a valid Sloth file ---------------------------------------------------------------------

# Sloth's documented "getting started" example, unchanged.
SLOTH_GETTING_STARTED = spec(
    """
    version: "prometheus/v1"
    service: "myservice"
    labels:
      owner: "myteam"
      repo: "myorg/myservice"
      tier: "2"
    slos:
      # We allow failing (5xx and 429) 1 request every 1000 requests (99.9%).
      - name: "requests-availability"
        objective: 99.9
        description: "Common SLO based on availability for HTTP request responses."
        labels:
          category: availability
        sli:
          events:
            error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
            total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
        alerting:
          name: "MyServiceHighErrorRate"
          labels:
            category: "availability"
          annotations:
            # Overwrite default Sloth SLO alert summmary on ticket and page alerts.
            summary: "High error rate on 'myservice' requests responses"
          page_alert:
            labels:
              severity: "pageteam"
              routing_key: "myteam"
          ticket_alert:
            labels:
              severity: "slack"
              slack_channel: "#alerts-myteam"
    """
)


def test_sloth_getting_started_example_validates_unchanged(tmp_path, capsys):
    root = write_specs(tmp_path, {"myservice.yaml": SLOTH_GETTING_STARTED})

    [loaded], errors = load_file(root / "slos" / "myservice.yaml", "slos/myservice.yaml")
    assert errors == []
    assert check_all([loaded])[0] == []
    slo = loaded.spec.slos[0]
    assert (loaded.spec.service, slo.name, str(slo.objective)) == ("myservice", "requests-availability", "99.9")
    assert slo.alerting.ticket_alert.labels == {"severity": "slack", "slack_channel": "#alerts-myteam"}

    assert cli.main(["--root", str(root), "validate"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("1 file(s), 1 SLO(s): valid\n", "")


def test_an_outage_alert_at_or_under_what_the_slo_allows_is_refused(tmp_path):
    text = spec(
        """
        version: modelmon/v1
        service: svc
        slos:
          - name: loose
            objective: 70
            sli: {error_rate: {warning_above: 40, critical_above: 50}}
            alerting:
              outage_alert: {above: 25}
              # The default fast page would need 14.4 x 30% = 432% errors: windows any outage can fire.
              windows: [{severity: page, long: 1h, short: 5m, budget_percent: 0.5}]
          - name: strict
            objective: 99
            sli: {availability: {}}
            alerting:
              outage_alert: {above: 5}
        """
    )
    assert errors_in(tmp_path, text) == [
        f"slos/x.yaml:{after(text, 'above: ', occurrence=3)}: slos[0].alerting.outage_alert.above: "
        "must be above the 30% of bad calls the 70% objective allows (got 25): it would page while the SLO is met",
        f"slos/x.yaml:{after(text, 'above: ', occurrence=4)}: slos[1].alerting.outage_alert.above: "
        "must be above the critical threshold's 5% of failing calls (got 5): "
        "the outage alert is the page for what is worse than the red band",
    ]


@pytest.mark.parametrize("label", ["service", "slo", "alertname", "long_window", "short_window"])
def test_group_by_refuses_labels_modelmon_writes_on_series_or_alerts(tmp_path, label):
    text = (
        "version: modelmon/v1\nservice: svc\nslos:\n  - name: a\n    objective: 99\n"
        f"    sli:\n      availability:\n        group_by: [{label}]\n"
    )
    errors = errors_in(tmp_path, text)
    assert any("slos[0].sli.availability.group_by" in e and repr(label) in e for e in errors), errors


def test_default_windows_that_no_outage_can_reach_are_left_out(tmp_path, capsys):
    """At 90 % the fast page's threshold is 14.4 x 10 % = 144 %: that page could never fire, so the
    SLO keeps the three default pairs that can (Sloth writes the fourth, which never fires), and
    their generated tests pass. Under 93.06 % the 1h/5m page goes; at 93.1 % it stays."""
    for objective, pairs in (("90", ["6h/30m", "1d/2h", "3d/6h"]), ("93.1", ["1h/5m", "6h/30m", "1d/2h", "3d/6h"])):
        root = tmp_path / objective
        (root / "slos").mkdir(parents=True)
        slo = f"  - name: a\n    objective: {objective}\n    sli: {{availability: {{}}}}\n"
        text = f"version: modelmon/v1\nservice: svc\nslos:\n{slo}"
        (root / "slos" / "svc.yaml").write_text(text)
        [plan] = build.compile_all(root).plans["svc"]
        assert [f"{a.long}/{a.short}" for a in plan.burn_alerts] == pairs
        assert all(a.threshold < 1 for a in plan.burn_alerts)
    assert cli.main(["--root", str(tmp_path / "90"), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(tmp_path / "90"), "test"]) == 0, capsys.readouterr().err


# --- libyaml and PyYAML's parser read the specs alike ----------------------------------------


def _same_nodes(a: yaml.Node, b: yaml.Node, seen: dict[int, int]) -> None:
    """Two node trees alike: kinds, tags, values, styles, marks, and which nodes are one node (an
    alias is its anchor's node)."""
    if id(a) in seen:
        assert seen[id(a)] == id(b), "an alias names another node"
        return
    seen[id(a)] = id(b)
    assert type(a) is type(b) and a.tag == b.tag
    start_a, start_b = a.start_mark, b.start_mark  # (where every error points)
    assert (start_a.line, start_a.column, start_a.index) == (start_b.line, start_b.column, start_b.index), a
    # An end mark past a line break is the next line's start in libyaml's, the line's end in PyYAML's:
    # alike by index (no error quotes one).
    assert a.end_mark.index == b.end_mark.index, a
    if isinstance(a, yaml.ScalarNode):
        assert (a.value, a.style or None) == (b.value, b.style or None)  # (plain: '' in libyaml's, None in PyYAML's)
        return
    assert bool(a.flow_style) == bool(b.flow_style)  # (an indentless list's: False in libyaml's, None in PyYAML's)
    assert len(a.value) == len(b.value)
    if isinstance(a, yaml.MappingNode):
        for (ka, va), (kb, vb) in zip(a.value, b.value, strict=True):
            _same_nodes(ka, kb, seen)
            _same_nodes(va, vb, seen)
    else:
        for ia, ib in zip(a.value, b.value, strict=True):
            _same_nodes(ia, ib, seen)


def _read_alike(text: str) -> bool:
    """Whether libyaml reads `text` as PyYAML's parser does, where the loader asks libyaml
    (loader.composed): what libyaml accepts, PyYAML accepts too, as the same nodes. Returns
    whether libyaml was asked: only of text that ends a line, printable ASCII without tabs and
    backslashes or `!`."""
    if not loader.libyaml_reads_alike(text):
        return False
    try:
        fast = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return True  # PyYAML's parser reads it, and says what is wrong
    slow = list(yaml.compose_all(text, Loader=yaml.SafeLoader))  # raises where only libyaml accepted it
    assert len(fast) == len(slow)
    seen: dict[int, int] = {}
    for a, b in zip(fast, slow, strict=True):
        _same_nodes(a, b, seen)
    return True


def _yaml_texts_in_the_tests() -> list[str]:
    """Every multi-line string constant of the tests that YAML reads as a mapping (the specs they
    write, hostile ones among them), and every YAML file of the repository."""
    import ast

    found = [path.read_text(encoding="utf-8") for path in sorted(REPO.glob("**/*.y*ml")) if ".venv" not in path.parts]
    for path in sorted((REPO / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value:
                text = textwrap.dedent(node.value)
                if "\n" in text.strip():
                    found.append(text)
    return found


def test_libyaml_reads_every_spec_of_the_tests_as_pyyaml_does():
    texts = _yaml_texts_in_the_tests()
    asked = sum(_read_alike(text) for text in texts)
    assert asked > 150, f"libyaml was asked of {asked} of {len(texts)} texts"  # the path the loader takes


_YAML_PIECES = st.sampled_from(
    [
        *"ab1 :-?[]{},#&*|>'\"%~.=/",
        *("\n", "\n  ", "\n- ", "---\n", "...\n", "- a\n", "k: v\n", "&x ", "*x", "<<: ", "|\n  x\n", ">-\n  y\n"),
        *("'q\n r'", '"d\n e"', " #c\n", "{a: b}", "[a, b]", "http://x/?q", "|2\n   z\n"),
    ]
)


@settings(max_examples=3000, deadline=None, database=None, derandomize=True)
@given(st.lists(_YAML_PIECES, max_size=30).map("".join))
def test_libyaml_reads_any_yaml_as_pyyaml_does(text):
    """Indicators, flow and block collections, anchors, document markers, comments in any order:
    what libyaml accepts, PyYAML's parser accepts too, with the same nodes and marks."""
    _read_alike(text + "\n")
    assert not _read_alike(text.rstrip("\n"))  # (libyaml marks a value missing at the end on the line after)


@settings(max_examples=1500, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(fuzz_specs.SEEDS), st.data())
def test_libyaml_reads_mutated_specs_as_pyyaml_does(seed_text, data):
    text = seed_text
    for _ in range(data.draw(st.integers(1, 4))):
        text = fuzz_specs.mutate(text, data)
    _read_alike(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: {url: http://x/?q=1}\n",  # `?` in a flow collection: libyaml reads the URL, PyYAML refuses it
        "a: [x ?]\n",
        "a: |#\n  x\n",  # a block scalar's header against a comment: libyaml reads it, PyYAML refuses it
        "a: {b: }\n",  # an empty value in a flow mapping: libyaml marks it a column on
        "!\n",  # a bare tag: a string to libyaml, null to PyYAML
        "? a",  # no line break at the end: libyaml marks the missing value on the line after
    ],
)
def test_where_libyaml_reads_otherwise_the_loader_reads_as_pyyaml(text):
    """The texts the two parsers read apart are composed by PyYAML's: the nodes (and their marks)
    or the error are PyYAML's."""
    try:
        slow = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        with pytest.raises(yaml.YAMLError) as raised:
            loader.composed(text)
        assert str(raised.value) == str(err)
        return
    fast = loader.composed(text)
    seen: dict[int, int] = {}
    for a, b in zip(fast, slow, strict=True):
        _same_nodes(a, b, seen)
