"""The generated promtool tests, run by the real promtool, and proof that they catch regressions."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelmon import build, cli, promtool
from modelmon.durations import parse_duration
from modelmon.loader import SpecErrors
from modelmon.outputs import rules
from modelmon.outputs.promtool_tests.simulation import AlertState
from tests import binaries
from tests.promtool_suites import expected_alert, run_promtool_tests, series_text

REPO = Path(__file__).resolve().parent.parent
MAIN_TESTS = REPO / "prometheus" / "tests" / "models-monitoring.test.yml"
PERIOD_TESTS = REPO / "prometheus" / "tests" / "models-monitoring.every-30m.test.yml"
SCRAPE_TESTS = REPO / "prometheus" / "tests" / "models-monitoring.every-15s.test.yml"


def groups_of(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["tests"]


def group(title_start: str, path: Path = MAIN_TESTS) -> dict:
    return next(g for g in groups_of(path) if g["name"].startswith(title_start))


def checks(test_group: dict, alertname: str) -> dict[str, list[dict]]:
    return {t["eval_time"]: t["exp_alerts"] for t in test_group["alert_rule_test"] if t["alertname"] == alertname}


@pytest.mark.parametrize("promtool_binary", binaries.both("promtool"))
def test_generated_tests_of_the_shipped_specs_pass_with_real_promtool(promtool_binary, monkeypatch, capsys):
    """The same files on both engines: the pinned promtool (3.x, as docker compose deploys) and Debian's 2.42."""
    binary = promtool_binary()
    monkeypatch.setenv("MODELMON_PROMTOOL", binary)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"promtool, version (3\.\d+|2\.42)\.", version), version
    assert cli.main(["--root", str(REPO), "test"]) == 0, capsys.readouterr().err
    assert "test groups in 3 file(s) passed" in capsys.readouterr().out


def test_every_slo_has_every_scenario():
    titles = [g["name"] for g in groups_of(MAIN_TESTS)]
    period = [g["name"] for g in groups_of(PERIOD_TESTS)]
    scrape = [g["name"] for g in groups_of(SCRAPE_TESTS)]
    for slo in ("availability", "error-rate", "latency"):
        prefix = f"models-monitoring/{slo}: "
        outage = "a latency outage (every call over 5000 ms) of " if slo == "latency" else "a full outage of "
        assert any(t.startswith(prefix + outage) and "burn-rate page" in t for t in titles), slo
        assert any(t.startswith(prefix + outage) and "every 15s pages through the outage alert" in t for t in scrape)
        assert any(t.startswith(prefix + "on a Prometheus with 180 minutes of data") for t in titles), slo
        assert any(t.startswith(prefix + "a 5-minute blip of 20% ") and t.endswith("fires nothing") for t in titles)
        assert any(
            t.startswith(prefix + "a slow burn of ") and t.endswith("never pages nor calls the budget spent")
            for t in period
        )
        assert any(t.startswith(prefix + "healthy traffic") and t.endswith("over the 30d period") for t in period)
        assert any(t.startswith(prefix) and "the SLA-violated alert fires" in t for t in period), slo
        fresh = prefix + "on a Prometheus with 3 days of data, "
        assert any(t.startswith(fresh) and t.endswith(": no SLA-violated alert") for t in period), slo
        assert any(
            t.startswith(prefix + "a 5-minute blip") and t.endswith("fires no threshold or outage alert")
            for t in scrape
        )
    for slo, sides in (("availability", ("99.1%", "98.9%", "95.5%", "94.5%")), ("error-rate", ("4.5%", "5.5%"))):
        for side in sides:
            assert any(t.startswith(f"models-monitoring/{slo}: ") and f" of {side} of " in t for t in titles), side


def test_burn_rate_page_fires_nine_minutes_into_a_full_outage_and_not_before():
    # The outage starts after an hour of healthy traffic: the 1h ratio is about the minutes into the
    # outage / 60, above 14.4% from minute 9 (no `for`: the 5m window guards). The longer windows hold
    # all the data there is (under 6h), so they read the same ratio and fire first.
    outage = group("models-monitoring/availability: a full outage")
    assert "from minute 60 " in outage["name"]
    at = checks(outage, "ModelAvailabilityBudgetBurn")
    assert at["1h"] == []
    assert "1h" not in [a["exp_labels"]["long_window"] for a in at["1h8m"]]
    pages = [a for a in at["1h9m"] if a["exp_labels"]["long_window"] == "1h"]
    [page] = pages
    assert page["exp_labels"]["model"] == "claude-3-5-sonnet-20241022"
    assert page["exp_labels"]["severity"] == "critical"
    # Scraped half a minute off the evaluations: the newest sample is 30s old, so 8.5 of the
    # window's 59 sampled minutes are the outage's.
    assert page["exp_annotations"]["description"].startswith("The error ratio over the last 1h is 14.79%")


def test_a_model_failing_every_call_pages_within_three_minutes_at_the_shipped_scrape_interval():
    """The shipped configuration scrapes every 15s: each SLO's outage alert pages in under 3 minutes."""
    assert yaml.safe_load(SCRAPE_TESTS.read_text())["evaluation_interval"] == "15s"
    for slo, alert in (
        ("availability", "ModelAvailabilityOutage"),
        ("error-rate", "ModelErrorRateOutage"),
        ("latency", "ModelLatencyOutage"),
    ):
        fast = group(f"models-monitoring/{slo}: ", SCRAPE_TESTS)
        # Scraped every 15s, half a scrape off the evaluations: a value every other 7.5s position.
        assert fast["interval"] == "7500ms"
        tokens = next(s for s in fast["input_series"] if "claude" in s["series"])["values"].split()
        assert tokens[0] == "_" and all(t == "_" for t in tokens[2::2]) and "_" not in tokens[1::2]
        start = next(s for s in fast["input_series"] if "claude" in s["series"])
        at = checks(fast, alert)
        silent, firing = sorted(at, key=parse_duration)
        assert at[silent] == [] and len(at[firing]) == 1, slo
        assert parse_duration(firing) - parse_duration(silent) == 15
        # The outage starts at minute 10 of the input (healthy before, every call bad after).
        assert parse_duration(firing) - 600 <= 180, (slo, firing, start["series"])


def test_a_fresh_prometheus_outage_pages_but_leaves_the_budget():
    fresh = group("models-monitoring/availability: on a Prometheus with 180 minutes of data")
    assert [t for t in checks(fresh, "ModelAvailabilityOutage")["32m"]]
    assert all(alerts == [] for alerts in checks(fresh, "ModelAvailabilityBudgetExhausted").values())
    expected = {t["expr"].removeprefix("round(").split("{")[0]: t["exp_samples"] for t in fresh["promql_expr_test"]}
    broken = next(s["value"] for s in expected["slo:period_error_budget_remaining:ratio"] if "claude" in s["labels"])
    # Prometheus 2 and 3 average the tiles a few bits apart: the test states the values rounded (exact in both).
    rounded = [t["expr"] for t in fresh["promql_expr_test"] if t["expr"].startswith("round(")]
    assert any("slo:period_error_budget_remaining:ratio" in e and e.endswith(", 1e-12)") for e in rounded)
    # 10 failing minutes of 180 is a 6% ratio over the data, -5.1 of the budget if it were the whole period;
    # against a whole period of that traffic, 2.6% of the budget is used.
    assert 0.97 < broken < 0.98
    coverage = {s["value"] for s in expected["slo:period_coverage:ratio"]}
    # Since the first tile, plus its 5 minutes. Scrapes at 0m30s and 1m30s: the first 5m rate is at minute 2.
    assert coverage == {(180 * 60 - 120 + 300) / (30 * 86400)}


def test_outage_scenario_holds_a_model_without_error_series_and_an_idle_model():
    outage = group("models-monitoring/availability: a full outage")
    series = [s["series"] for s in outage["input_series"]]
    requests = [s for s in series if s.startswith("model_requests_total")]
    errors = [s for s in series if s.startswith("model_errors_total")]
    assert len(requests) == 4 and len(errors) == 3
    ratio = next(t for t in outage["promql_expr_test"] if t["expr"].startswith("slo:sli_error:ratio_rate5m"))
    values = {re.search(r'model="([^"]+)"', s["labels"]).group(1): s["value"] for s in ratio["exp_samples"]}
    assert values["claude-3-5-sonnet-20241022"] == 1
    assert values["gemini-1.5-pro"] == 0  # no error series: 0, not missing
    assert "llama3.2" not in values  # idle: no traffic, no ratio, no alert


def test_ticket_alert_fires_six_hours_into_a_slow_burn_after_six_healthy_hours():
    # 0.5% errors for 6h, then 1.5%: the 3d ratio (all 12h of data) crosses 1% at 12h, the 6h one long before.
    burn = group("models-monitoring/availability: a slow burn", PERIOD_TESTS)
    assert "from minute 360 fires the ticket alert at minute 720" in burn["name"]
    at = checks(burn, "ModelAvailabilityBudgetBurn")
    assert at["11h30m"] == []
    assert [a["exp_labels"]["long_window"] for a in at["12h"]] == ["3d"]
    assert {a["exp_labels"]["severity"] for alerts in at.values() for a in alerts} == {"warning"}
    assert all(alerts == [] for alerts in checks(burn, "ModelAvailabilityBudgetExhausted").values())


def project_with(tmp_path: Path, rules: str, suite: str, only: tuple[str, ...] = ()) -> Path:
    """A project of these rules and one-minute tests (`only`: just the groups whose titles start
    so; each group evaluates every rule, so fewer run faster)."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "prometheus" / "tests").mkdir(parents=True)
    (tmp_path / "rules" / "models-monitoring.yml").write_text(rules)
    tests = yaml.safe_load(suite)
    if only:
        tests["tests"] = [g for g in tests["tests"] if g["name"].startswith(only)]
        assert tests["tests"], only
    (tmp_path / "prometheus" / "tests" / MAIN_TESTS.name).write_text(yaml.safe_dump(tests, sort_keys=False))
    return tmp_path


def mutated_project(tmp_path: Path, old: str, new: str, count: int = 1, only: tuple[str, ...] = ()) -> Path:
    """A copy of the shipped rules with one deliberate regression, and the shipped one-minute tests."""
    text = (REPO / "rules" / "models-monitoring.yml").read_text()
    assert text.count(old) >= count, old
    return project_with(tmp_path, text.replace(old, new, count), MAIN_TESTS.read_text(), only)


def failures_in(root: Path) -> list:
    """The one-minute tests' failures in `root`; there must be some."""
    ok, failures, _ = promtool.test_rules([Path("prometheus/tests/models-monitoring.test.yml")], cwd=root)
    assert not ok
    return failures


FAST_PAGE = "    labels:\n      severity: critical\n      long_window: 1h\n"
# The threshold scenarios: a regression of one alert must leave them passing.
THRESHOLDS = "models-monitoring/availability: availability of "


def failures_with(tmp_path: Path, old: str, new: str, count: int = 1, only: tuple[str, ...] = ()) -> list:
    """The one-minute tests' failures against the shipped rules with one regression; there must be some."""
    return failures_in(mutated_project(tmp_path, old, new, count, only))


@pytest.mark.parametrize("promtool_binary", binaries.both("promtool"))
def test_a_slower_page_alert_fails_and_is_reported_in_plain_words(tmp_path, capsys, monkeypatch, promtool_binary):
    """Both promtools' output read back: 2 names each file before its failures, 3 does not."""
    monkeypatch.setenv("MODELMON_PROMTOOL", promtool_binary())
    outage = "models-monitoring/availability: a full outage"
    root = mutated_project(tmp_path, FAST_PAGE, "    for: 2m\n" + FAST_PAGE, only=(outage, THRESHOLDS))

    assert cli.main(["--root", str(root), "test"]) == cli.EXIT_TESTS

    err = capsys.readouterr().err
    assert "FAILED models-monitoring/availability: a full outage of claude-3-5-sonnet-20241022" in err
    assert "not before, and leaves other models silent  (prometheus/tests/models-monitoring.test.yml)" in err
    assert "alert ModelAvailabilityBudgetBurn at 1h9m: expected" in err
    ran = [g for g in groups_of(MAIN_TESTS) if g["name"].startswith((outage, THRESHOLDS))]
    assert f"promtool: 1 of {len(ran)} test groups failed" in err


def test_a_shorter_threshold_delay_fails_the_blip_scenario(tmp_path):
    """The threshold alerts' 10m `for` is there for the blip: at 5m, 5 minutes of 20% errors would alert."""
    blip = "models-monitoring/availability: a 5-minute blip"
    failures = failures_with(tmp_path, "    for: 10m\n", "    for: 5m\n", count=4, only=(blip,))

    assert any(g.startswith("models-monitoring/availability: a 5-minute blip") for g in {f.group for f in failures})


def test_a_budget_stated_against_the_covered_hours_alone_fails_the_fresh_prometheus_scenario(tmp_path):
    """Without the coverage the period's budget of a Prometheus 3 hours old is the budget of 3 hours."""
    coverage = ' * last_over_time(slo:period_coverage:ratio{service="models-monitoring",slo="availability"}[15m])'
    fresh = "models-monitoring/availability: on a Prometheus with 180 minutes"
    failures = failures_with(tmp_path, coverage, "", only=(fresh,))

    groups = {f.group for f in failures}
    assert any(g.startswith("models-monitoring/availability: on a Prometheus with 180 minutes") for g in groups)
    details = "\n".join(line for f in failures for line in f.details)
    assert "ModelAvailabilityBudgetExhausted" in details, details


@pytest.mark.parametrize("promtool_binary", binaries.both("promtool"))
def test_dropping_the_missing_error_series_guard_fails(tmp_path, monkeypatch, promtool_binary):
    """A failed query is traced back to its test group, on both promtools."""
    monkeypatch.setenv("MODELMON_PROMTOOL", promtool_binary())
    guard = '\n      or on (model)\n      0 * model:model_requests:rate5m{service="models-monitoring"}'
    failures = failures_with(tmp_path, guard, "", only=("models-monitoring/availability: a full outage",))

    failed = {f.group for f in failures}
    assert any(g.startswith("models-monitoring/availability: a full outage") for g in failed)
    assert any("gemini-1.5-pro" in line for f in failures for line in f.details)


def test_long_windows_averaging_the_wrong_rate_fail(tmp_path):
    """The 6h, 1d and 3d windows average the 5m tiles; tiles of the 30m rate smear an outage."""
    tile = "record: model:model_errors:rate5m_tile\n    expr: |\n      model:model_errors:rate"
    failures = failures_with(tmp_path, tile + "5m{", tile + "30m{", only=("models-monitoring/availability: ",))

    groups = {f.group for f in failures}
    assert any(g.startswith("models-monitoring/availability: a full outage") for g in groups), groups
    # The long windows: the 1d ticket and 6h page miss their minutes and the period's ratio is off.
    details = "\n".join(line for f in failures for line in f.details)
    assert "alert ModelAvailabilityBudgetBurn at 1h5m: expected" in details, details
    assert re.search(r"query (round\()?slo:sli_error:ratio_rate30d", details), details


def test_a_wrong_threshold_fails_the_threshold_scenarios(tmp_path):
    failures = failures_with(tmp_path, ") < 0.99\n", ") < 0.98\n")

    # Only the scenario just below the 99% warning line can tell 0.99 from 0.98.
    assert {f.group for f in failures} == {
        "models-monitoring/availability: availability of 98.9% of claude-3-5-sonnet-20241022 fires warning",
    }


PACKAGE = REPO / "modelmon" / "promtool_tests"


def imported_modules(path: Path) -> set[str]:
    """Every module a file of the package imports, and each `from` import as module.name too."""
    package = ["modelmon", "promtool_tests"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return found


def test_the_test_generator_never_reads_the_rules_it_tests():
    """Expectations taken from the rule builder would agree with any rule it builds."""
    for path in sorted(PACKAGE.glob("*.py")):
        assert "modelmon.outputs.rules" not in imported_modules(path), path.name
    # Nor through what it imports, nor while it generates the shipped tests.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from modelmon.loader import load_file\n"
        "from modelmon.plan import plan_project\n"
        "from modelmon.outputs.promtool_tests import test_files\n"
        "[item], _ = load_file(Path('slos/models.yaml'), 'slos/models.yaml')\n"
        "[service] = plan_project([(item.spec, item.display)]).services\n"
        "assert len(test_files(list(service.slos), 'rules.yml', [])) == 3\n"
        "print('modelmon.outputs.rules' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout == "False\n"


def test_an_alert_is_pending_until_its_for_has_passed_and_inactive_once_its_expression_stops_holding():
    state = AlertState(hold=2)
    holds = [True, True, True, True, False, True, True, True]
    assert [state.evaluate(at, h) for at, h in enumerate(holds)] == [False, False, True, True] + [False] * 3 + [True]
    without_for = AlertState(hold=0)
    assert [without_for.evaluate(at, h) for at, h in enumerate([False, True, False])] == [False, True, False]


def built_with(tmp_path: Path, only: tuple[str, ...]) -> Path:
    """The shipped project compiled by the rule builder as it stands (a test may have broken it),
    its rules and the one-minute tests generated beside them; the tests must be the shipped ones."""
    compiled = build.compile_all(REPO)
    suite = compiled.files[f"{build.TESTS_DIR}/{MAIN_TESTS.name}"]
    assert suite == MAIN_TESTS.read_text()
    built = compiled.files["rules/models-monitoring.yml"]
    assert built != (REPO / "rules" / "models-monitoring.yml").read_text()
    return project_with(tmp_path, built, suite, only)


def test_a_rule_builder_writing_the_wrong_threshold_fails_the_tests_generated_beside_it(tmp_path, monkeypatch):
    """The tests' expectations come from the plan: a rule builder that writes the availability
    warning at 98% instead of the planned 99% leaves them as they were, and they catch it."""
    real = rules.alert_expr
    monkeypatch.setattr(rules, "alert_expr", lambda plan, alert: real(plan, alert).replace(") < 0.99", ") < 0.98"))

    failures = failures_in(built_with(tmp_path, only=(THRESHOLDS,)))

    assert {f.group for f in failures} == {
        "models-monitoring/availability: availability of 98.9% of claude-3-5-sonnet-20241022 fires warning",
    }


def test_a_rule_builder_writing_other_annotations_than_planned_fails_the_tests_generated_beside_it(
    tmp_path, monkeypatch
):
    """The expected annotations are the plan's, rendered: a builder that rewords one fails every
    scenario in which that alert fires."""
    real = rules.alert_rule

    def reworded(plan, alert):
        rule = real(plan, alert)
        if alert.name == "ModelAvailabilityLow":
            rule["annotations"] = {**rule["annotations"], "summary": rule["annotations"]["summary"] + " (reworded)"}
        return rule

    monkeypatch.setattr(rules, "alert_rule", reworded)

    failures = failures_in(built_with(tmp_path, only=(THRESHOLDS,)))

    assert {f.group.removeprefix(THRESHOLDS) for f in failures} == {
        "98.9% of claude-3-5-sonnet-20241022 fires warning",
        "95.5% of claude-3-5-sonnet-20241022 fires warning",
        "94.5% of claude-3-5-sonnet-20241022 fires critical and warning",
    }
    details = [line.lstrip() for f in failures for line in f.details]
    assert all(line.startswith(("alert ModelAvailabilityLow at", "but got")) for line in details), details


COVERED = """
version: modelmon/v1
service: covered
slos:
  - name: availability
    objective: 99
    period: 12h
    sli: {availability: {}}
    alerting:
      windows:
        - {severity: page, long: 1h, short: 5m, budget_percent: 50}
"""


def test_a_budget_spent_over_a_covered_period_fires_and_reads_as_the_plain_ratio(project):
    """Once the data covers the period, coverage is 1 (under 2.x and 3.x alike: the tiles are a minute
    apart, so the oldest in the window is within its 5 minutes either way) and the budget remaining is
    1 - ratio / budget. 1.5625 % errors against a 1 % budget over 13 hours of a 12h period: spent."""
    root = project({"c.yaml": COVERED})
    groups = yaml.safe_load(build.compile_all(root).files["rules/covered.yml"])["groups"]
    [alert] = [r for g in groups for r in g["rules"] if r.get("alert") == "CoveredAvailabilityBudgetExhausted"]
    labels = {"model": "m", "service": "covered", "slo": "availability"}
    ratio, budget = 16 / 1024, 0.01
    remaining = 1 - ratio * 1.0 / budget
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": 'model_requests_total{model="m"}', "values": "0+61440x780"},
                {"series": 'model_errors_total{model="m"}', "values": "0+960x780"},
            ],
            "promql_expr_test": [
                {
                    "expr": f'{name}{{slo="availability"}}',
                    "eval_time": "13h",
                    "exp_samples": [{"labels": series_text(name, labels), "value": value}],
                }
                for name, value in (
                    ("slo:period_coverage:ratio", 1.0),
                    ("slo:sli_error:ratio_rate12h", ratio),
                    ("slo:period_error_budget_remaining:ratio", remaining),
                )
            ],
            "alert_rule_test": [
                {
                    "eval_time": "13h",
                    "alertname": alert["alert"],
                    "exp_alerts": [expected_alert(alert, labels, remaining)],
                }
            ],
        }
    ]

    ok, output = run_promtool_tests(root, "covered.test.yml", tests)

    assert ok, output


HOSTILE = """\
version: modelmon/v1
service: hostile
slos:
  - name: latency
    objective: 99
    sli:
      latency:
        threshold_ms: 5000
        selector: '{selector}'
    alerting:
      page_alert:
        labels: {{pager: '{label}'}}
"""


@pytest.mark.parametrize(
    ("selector", "label"),
    [
        pytest.param('model="caf\\u00e9"', "team-{{ $labels.model }}", id="unicode escape, label template"),
        pytest.param('model="a\\rb\\303\\251"', "x\\y", id="CR and octal bytes"),
    ],
)
def test_generated_tests_of_hostile_selectors_and_alert_label_templates_pass(project, selector, label):
    """Selector values are read with every PromQL escape, and alert labels are expanded as Prometheus
    expands them: the generated tests then agree with the engine."""
    root = project({"hostile.yaml": HOSTILE.format(selector=selector, label=label)})
    compiled = build.compile_all(root)
    build.write_all(root, compiled)
    tests = sorted((root / "prometheus" / "tests").glob("hostile*.test.yml"))
    assert tests
    ok, _, output = promtool.test_rules([p.relative_to(root) for p in tests], cwd=root)
    assert ok, output


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("a {{", "unclosed template action"),
        ("{{ .x }}", "template action {{ .x }} is not supported in alert labels"),
        ("{{ $value }}", "is not allowed in alert labels: $value changes every evaluation"),
    ],
)
def test_alert_label_templates_promql_cannot_render_are_refused_by_validate(project, label, problem):
    root = project({"hostile.yaml": HOSTILE.format(selector='model="x"', label=label)})
    with pytest.raises(SpecErrors) as err:
        build.compile_all(root)
    [error] = err.value.errors
    assert "slos[0].alerting.page_alert.labels.pager" in str(error) and problem in str(error), str(error)
