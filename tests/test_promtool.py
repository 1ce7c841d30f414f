"""The generated promtool tests, run by the real promtool, and proof that they catch regressions."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from generator import cli, promtool

REPO = Path(__file__).resolve().parent.parent
MAIN_TESTS = REPO / "prometheus" / "tests" / "models-monitoring.test.yml"


def groups_of(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["tests"]


def group(title_start: str) -> dict:
    return next(g for g in groups_of(MAIN_TESTS) if g["name"].startswith(title_start))


def checks(test_group: dict, alertname: str) -> dict[str, list[dict]]:
    return {t["eval_time"]: t["exp_alerts"] for t in test_group["alert_rule_test"] if t["alertname"] == alertname}


def test_generated_tests_of_the_shipped_specs_pass_with_real_promtool(capsys):
    assert cli.main(["--root", str(REPO), "test"]) == 0, capsys.readouterr().err
    assert "test groups in 2 file(s) passed" in capsys.readouterr().out


def test_every_slo_has_every_scenario():
    titles = [g["name"] for g in groups_of(MAIN_TESTS)]
    period = [g["name"] for g in groups_of(REPO / "prometheus/tests/models-monitoring.every-30m.test.yml")]
    for slo in ("availability", "error-rate", "latency"):
        prefix = f"models-monitoring/{slo}: "
        outage = "a latency outage (every call over 5000 ms) of " if slo == "latency" else "a full outage of "
        assert any(t.startswith(prefix + outage) for t in titles), slo
        assert any(t.startswith(prefix + "a slow burn of ") and t.endswith("never pages") for t in titles), slo
        assert any(t.startswith(prefix + "healthy traffic") and t.endswith("over the 30d period") for t in period)
    for slo, sides in (("availability", ("99.1%", "98.9%", "95.5%", "94.5%")), ("error-rate", ("4.5%", "5.5%"))):
        for side in sides:
            assert any(t.startswith(f"models-monitoring/{slo}: ") and f" of {side} of " in t for t in titles), side


def test_page_alert_fires_eleven_minutes_into_a_full_outage_and_not_before():
    # 1h ratio = minutes into the outage / 60, above 14.4% from minute 9; then for: 2m.
    outage = group("models-monitoring/availability: a full outage")
    at = checks(outage, "ModelAvailabilityBudgetBurn")
    assert at["6h10m"] == []
    [page] = at["6h11m"]
    assert page["exp_labels"]["model"] == "claude-3-5-sonnet-20241022"
    assert page["exp_labels"]["long_window"] == "1h"
    assert page["exp_labels"]["severity"] == "critical"
    assert page["exp_annotations"]["description"].startswith("The error ratio over the last 1h is 18.74%")


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


def test_ticket_alert_fires_after_three_hours_of_slow_burn():
    burn = group("models-monitoring/availability: a slow burn")
    at = checks(burn, "ModelAvailabilityBudgetBurn")
    assert at["3h"] == []
    assert [a["exp_labels"]["long_window"] for a in at["3h1m"]] == ["3d"]
    assert {a["exp_labels"]["severity"] for alerts in at.values() for a in alerts} == {"warning"}


def mutated_project(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    """A copy of the shipped rules with one deliberate regression, and the one-minute tests."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "prometheus" / "tests").mkdir(parents=True)
    text = (REPO / "rules" / "models-monitoring.yml").read_text()
    assert text.count(old) >= count, old
    (tmp_path / "rules" / "models-monitoring.yml").write_text(text.replace(old, new, count))
    shutil.copy(MAIN_TESTS, tmp_path / "prometheus" / "tests")
    return tmp_path


def test_a_slower_page_alert_fails_and_is_reported_in_plain_words(tmp_path, capsys):
    root = mutated_project(tmp_path, "    for: 2m\n", "    for: 4m\n")

    assert cli.main(["--root", str(root), "test"]) == cli.EXIT_TESTS

    err = capsys.readouterr().err
    assert "FAILED models-monitoring/availability: a full outage of claude-3-5-sonnet-20241022" in err
    assert "alert ModelAvailabilityBudgetBurn at 6h11m: expected" in err
    assert "but got nothing (no firing alert, no sample)" in err
    assert "promtool: 1 of 14 test groups failed" in err
    assert "test groups failed" in err


def test_dropping_the_missing_error_series_guard_fails(tmp_path):
    guard = '\n      or on (model)\n      0 * model:model_requests:rate5m{service="models-monitoring"}'
    root = mutated_project(tmp_path, guard, "")

    ok, failures, _ = promtool.test_rules([Path("prometheus/tests/models-monitoring.test.yml")], cwd=root)

    assert not ok
    failed = {f.group for f in failures}
    assert any(g.startswith("models-monitoring/availability: a full outage") for g in failed)
    assert any("gemini-1.5-pro" in line for f in failures for line in f.details)


def test_long_windows_averaging_the_wrong_rate_fail(tmp_path):
    """The 6h, 1d and 3d windows average the 5m tiles; tiles of the 30m rate smear an outage."""
    tile = "record: model:model_errors:rate5m_tile\n    expr: |\n      model:model_errors:rate"
    root = mutated_project(tmp_path, tile + "5m{", tile + "30m{")

    ok, failures, _ = promtool.test_rules([Path("prometheus/tests/models-monitoring.test.yml")], cwd=root)

    assert not ok
    groups = {f.group for f in failures}
    assert any(g.startswith("models-monitoring/availability: a full outage") for g in groups), groups
    # The slow page (6h/30m) and the long ratios the slow burn states, not the 1h/5m page.
    details = "\n".join(line for f in failures for line in f.details)
    assert "slo:sli_error:ratio_rate6h" in details, details


def test_a_wrong_threshold_fails_the_threshold_scenarios(tmp_path):
    root = mutated_project(tmp_path, ") < 0.99\n", ") < 0.98\n")

    ok, failures, _ = promtool.test_rules([Path("prometheus/tests/models-monitoring.test.yml")], cwd=root)

    assert not ok
    # Only the scenario just below the 99% warning line can tell 0.99 from 0.98.
    assert {f.group for f in failures} == {
        "models-monitoring/availability: availability of 98.9% of claude-3-5-sonnet-20241022 fires warning",
    }
