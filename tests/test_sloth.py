"""A Sloth `prometheus/v1` file compiles unchanged, with Sloth's alert semantics.

The spec is Sloth's documented getting-started example (sloth.dev): a 99.9%
availability SLO on HTTP request counters, with custom page and ticket labels.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelmon import build, cli
from modelmon.outputs.promtool_tests import simulation
from tests.promtool_suites import expected_alert, run_promtool_tests, series_text

SLOTH_EXAMPLE = """
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
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels:
        category: "availability"
      annotations:
        # Overwrite default Sloth SLO alert summmary on ticket and page alerts.
        summary: "High error rate on 'myservice' requests responses"
      page_alert:
        labels:
          severity: pageteam
          routing_key: myteam
      ticket_alert:
        labels:
          severity: "slack"
          slack_channel: "#alerts-myteam"
"""


@pytest.fixture
def sloth_project(project) -> Path:
    return project({"myservice.yaml": SLOTH_EXAMPLE})


# The labels of the Sloth example's SLO series: service, SLO and the spec's own labels.
SLO_LABELS = {"service": "myservice", "slo": "requests-availability", "owner": "myteam"}
SLO_LABELS |= {"repo": "myorg/myservice", "tier": "2"}


def alert_rules(root: Path) -> list[dict]:
    """The burn-rate rules: Sloth's page and ticket alerts."""
    groups = yaml.safe_load(build.compile_all(root).files["rules/myservice.yml"])["groups"]
    rules = next(g for g in groups if g["name"] == "myservice-requests-availability-alerts")["rules"]
    return [r for r in rules if r["alert"] == "MyServiceHighErrorRate"]


def test_sloth_events_sli_becomes_the_error_ratio_of_each_window(sloth_project):
    groups = yaml.safe_load(build.compile_all(sloth_project).files["rules/myservice.yml"])["groups"]
    rules = {r["record"]: r for r in groups[0]["rules"]}
    # The SLI's two queries are recorded per window, and the ratio divides them.
    total, errors = rules["slo:sli_total_events:rate5m"], rules["slo:sli_error_events:rate5m"]
    assert total["expr"] == 'sum(rate(http_request_duration_seconds_count{job="myservice"}[5m]))\n'
    assert 'code=~"(5..|429)"}[5m]' in errors["expr"]
    five = rules["slo:sli_error:ratio_rate5m"]
    selector = '{service="myservice",slo="requests-availability"}'
    assert five["expr"] == (
        f"slo:sli_error_events:rate5m{selector}\n/\n(\n  slo:sli_total_events:rate5m{selector} > 0\n)\n"
    )
    assert (
        total["labels"]
        == errors["labels"]
        == five["labels"]
        == {
            "service": "myservice",
            "slo": "requests-availability",
            "owner": "myteam",
            "repo": "myorg/myservice",
            "tier": "2",
        }
    )


def test_sloth_page_and_ticket_labels_override_severity_and_add_routing(sloth_project):
    rules = alert_rules(sloth_project)
    assert [r["alert"] for r in rules] == ["MyServiceHighErrorRate"] * 4
    labels = [r["labels"] for r in rules]
    assert labels[0] == {
        "severity": "pageteam",
        "long_window": "1h",
        "short_window": "5m",
        "category": "availability",
        "routing_key": "myteam",
    }
    assert labels[3] == {
        "severity": "slack",
        "long_window": "3d",
        "short_window": "6h",
        "category": "availability",
        "slack_channel": "#alerts-myteam",
    }


def test_sloth_thresholds_are_factor_times_the_one_per_mille_budget(sloth_project):
    thresholds = [r["expr"].split(" > ")[1].split("\n")[0] for r in alert_rules(sloth_project)]
    assert thresholds == ["0.0144", "0.006", "0.003", "0.001"]


def test_sloth_summary_annotation_replaces_the_generated_one(sloth_project):
    for rule in alert_rules(sloth_project):
        assert rule["annotations"]["summary"] == "High error rate on 'myservice' requests responses"
        assert rule["annotations"]["runbook_url"] == "http://localhost:8001/runbooks/MyServiceHighErrorRate/"


def test_sloth_file_alerts_on_real_http_counters_in_promtool(sloth_project, tmp_path):
    """Raw request counters in, the burn-rate alerts out: 1 in 11 requests fails (9%), far above 1.44%."""
    ok_per_min, bad_per_min = 600.0, 60.0
    ok = [ok_per_min * m for m in range(31)]
    bad = [bad_per_min * m for m in range(31)]
    total = [a + b for a, b in zip(ok, bad, strict=True)]
    ratio = simulation.rate(bad, 3, 5) / (simulation.rate(ok, 3, 5) + simulation.rate(bad, 3, 5))
    # At minute 1 every window holds the same minute of traffic (1 in 11 fails): every pair fires.
    first = simulation.rate(bad, 1, 5) / (simulation.rate(ok, 1, 5) + simulation.rate(bad, 1, 5))
    burns = [r for r in alert_rules(sloth_project) if r["alert"] == "MyServiceHighErrorRate"]
    sample = SLO_LABELS
    tests = [
        {
            "name": "sloth example on raw counters",
            "interval": "1m",
            "input_series": [
                {
                    "series": 'http_request_duration_seconds_count{job="myservice",code="200"}',
                    "values": "0+600x30",
                },
                {
                    "series": 'http_request_duration_seconds_count{job="myservice",code="503"}',
                    "values": "0+60x30",
                },
                {
                    "series": 'http_request_duration_seconds_count{job="other",code="503"}',
                    "values": "0+6000x30",
                },
            ],
            "promql_expr_test": [
                {
                    "expr": 'slo:sli_error:ratio_rate5m{slo="requests-availability"}',
                    "eval_time": "3m",
                    "exp_samples": [
                        {"labels": series_text("slo:sli_error:ratio_rate5m", sample), "value": ratio},
                    ],
                }
            ],
            "alert_rule_test": [
                # One sample at minute 0: no rate, silent. True from minute 1 (two samples), and no
                # `for` (as in Sloth): firing at once.
                {"eval_time": "0m", "alertname": "MyServiceHighErrorRate", "exp_alerts": []},
                {
                    "eval_time": "1m",
                    "alertname": "MyServiceHighErrorRate",
                    "exp_alerts": [expected_alert(rule, sample, first) for rule in burns],
                },
            ],
        }
    ]
    assert abs(ratio - 1 / 11) < 1e-12 and total[-1] == 19800

    ok, output = run_promtool_tests(sloth_project, "sloth.test.yml", tests)

    assert ok, output


def test_long_windows_of_an_events_sli_count_missing_error_tiles_as_no_errors(sloth_project):
    """An error query has no result until the first error: its tiles are missing, not 0. The 1d
    ratio must divide error sums by request sums (7 errors in 610 requests), not average the
    few error tiles there are against every request tile (which would read 1 in 10)."""
    labels = SLO_LABELS
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": series_text("slo:sli_total_events:rate5m_tile", labels), "values": "10+0x60"},
                {"series": series_text("slo:sli_error_events:rate5m_tile", labels), "values": "_x54 1+0x6"},
            ],
            "promql_expr_test": [
                {
                    "expr": 'slo:sli_error:ratio_rate1d{slo="requests-availability"}',
                    "eval_time": "60m",
                    "exp_samples": [{"labels": series_text("slo:sli_error:ratio_rate1d", labels), "value": 7 / 610}],
                }
            ],
        }
    ]

    ok, output = run_promtool_tests(sloth_project, "missing.test.yml", tests)

    assert ok, output


def test_generated_tests_of_a_sloth_file_pass_in_promtool(sloth_project, capsys):
    assert cli.main(["--root", str(sloth_project), "build"]) == 0
    assert cli.main(["--root", str(sloth_project), "test"]) == 0, capsys.readouterr().err
