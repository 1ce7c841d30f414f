"""OpenSLO files (v1alpha as Sloth reads them, and v1) compile when they describe a Prometheus
ratio SLI over a rolling window, budgeted by occurrences; the rest is refused where it is written."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from modelmon import build
from modelmon.loader import SpecErrors
from tests.test_validation import at

GOOD = 'sum(rate(http_requests_total{job="api",code!~"5.."}[{{.window}}]))'
BAD = 'sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))'
TOTAL = 'sum(rate(http_requests_total{job="api"}[{{.window}}]))'

V1ALPHA = textwrap.dedent(
    f"""\
    apiVersion: openslo/v1alpha
    kind: SLO
    metadata:
      name: requests
      displayName: Requests Availability
    spec:
      service: api
      description: Requests that do not fail.
      budgetingMethod: Occurrences
      objectives:
        - ratioMetrics:
            good: {{source: prometheus, queryType: promql, query: '{GOOD}'}}
            total: {{source: prometheus, queryType: promql, query: '{TOTAL}'}}
          target: 0.999
      timeWindows:
        - count: 30
          unit: Day
    """
)


def v1(indicator: str, extra: str = "", name: str = "requests", objectives: str = "- target: 0.995") -> str:
    """An OpenSLO v1 SLO of service api over 28 rolling days; `indicator` is its indicator block
    (written as at the top level: it is indented into spec here)."""
    lines = [
        "apiVersion: openslo/v1",
        "kind: SLO",
        "metadata:",
        f"  name: {name}",
        "spec:",
        "  service: api",
        "  budgetingMethod: Occurrences",
        "  timeWindow:",
        "    - duration: 28d",
        "      isRolling: true",
        textwrap.indent(indicator, "  ").rstrip("\n"),
        "  objectives:",
        f"    {objectives}",
    ]
    if extra:
        lines.append(textwrap.indent(extra, "  ").rstrip("\n"))
    return "\n".join(lines) + "\n"


def prometheus(query: str) -> str:
    return f"{{metricSource: {{type: Prometheus, spec: {{query: '{query}'}}}}}}"


INLINE = (
    "indicator:\n  metadata: {name: requests-ok}\n  spec:\n    ratioMetric:\n      counter: true\n"
    f"      good: {prometheus(GOOD)}\n      total: {prometheus(TOTAL)}\n"
)


def compiled(project, text: str):
    return build.compile_all(project({"api.yaml": text}))


def errors(project, text: str) -> list[str]:
    try:
        compiled(project, text)
    except SpecErrors as err:
        return [str(e) for e in err.errors]
    return []


def test_sloths_openslo_v1alpha_becomes_an_events_slo_without_alerts(project):
    result = compiled(project, V1ALPHA)
    [plan] = result.plans["api"]
    assert (plan.name, str(plan.objective), plan.period, plan.description) == (
        "requests-0",
        "99.9",
        "30d",
        "Requests that do not fail.",
    )
    # Sloth's OpenSLO SLOs have no page or ticket alert; modelmon's outage and budget alerts follow.
    assert plan.alerts() == ()
    groups = yaml.safe_load(result.files["rules/api.yml"])["groups"]
    errors_rule = next(r for g in groups for r in g["rules"] if r.get("record") == "slo:sli_error_events:rate5m")
    assert errors_rule["expr"] == f"({TOTAL}) - ({GOOD})\n".replace("{{.window}}", "5m")


def test_openslo_v1_inline_ratio_of_good_events_compiles(project):
    [plan] = compiled(project, v1(INLINE)).plans["api"]
    assert (plan.name, str(plan.objective), plan.period, plan.kind) == ("requests-0", "99.5", "28d", "events")


def test_openslo_v1_bad_events_and_target_percent(project):
    indicator = INLINE.replace("good:", "bad:").replace(GOOD, BAD)
    [plan] = compiled(project, v1(indicator, objectives="- targetPercent: 99")).plans["api"]
    assert (str(plan.objective), plan.user_queries) == ("99", (("errors", BAD), ("total", TOTAL)))


@pytest.mark.parametrize(("kind", "query"), [("failure", BAD), ("success", GOOD)])
def test_openslo_v1_raw_ratio_becomes_a_raw_sli(project, kind, query):
    ratio = query.replace("sum(rate(", "sum(rate(") + f" / {TOTAL}"
    indicator = (
        f"indicator:\n  metadata: {{name: ratio}}\n  spec:\n    ratioMetric:\n      rawType: {kind}\n"
        f"      raw: {prometheus(ratio)}\n"
    )
    [plan] = compiled(project, v1(indicator)).plans["api"]
    expected = ratio if kind == "failure" else f"1 - ({ratio})"
    assert (plan.kind, plan.user_queries) == ("raw", (("error ratio", expected),))


def test_openslo_slos_of_one_service_in_a_file_are_one_service_and_may_name_an_sli_document(project):
    sli = textwrap.dedent(
        f"""\
        apiVersion: openslo/v1
        kind: SLI
        metadata:
          name: requests-ok
        spec:
          ratioMetric:
            good: {prometheus(GOOD)}
            total: {prometheus(TOTAL)}
        """
    )
    service = "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: api}\nspec: {description: The API}\n"
    text = "---\n".join(
        [service, sli, v1("indicatorRef: requests-ok"), v1(INLINE, name="strict", objectives="- target: 0.9999")]
    )
    result = compiled(project, text)
    assert [(p.name, str(p.objective)) for p in result.plans["api"]] == [("requests-0", "99.5"), ("strict-0", "99.99")]


REFUSED = [
    (
        v1(INLINE.replace("ratioMetric:", "thresholdMetric: {}\n    ratioMetric:")),
        "thresholdMetric: {}",
        "spec.indicator.spec.thresholdMetric: threshold metrics are not supported: modelmon reads ratio metrics",
    ),
    (
        v1(INLINE).replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices"),
        "Timeslices",
        "spec.budgetingMethod: budgetingMethod 'Timeslices' is not supported: modelmon budgets by occurrences "
        "(Occurrences), the share of good events",
    ),
    (
        v1(INLINE).replace("isRolling: true", "isRolling: false"),
        "false",
        "spec.timeWindow[0].isRolling: calendar windows are not supported: modelmon's periods are rolling",
    ),
    (
        v1(INLINE).replace("duration: 28d", "duration: 1M"),
        "1M",
        "spec.timeWindow[0].duration: a month is not a fixed length: write the period in days (e.g. 30d)",
    ),
    (
        v1(INLINE, extra="alertPolicies: [fast-burn]\n"),
        "[fast-burn]",
        "spec.alertPolicies: alert policies are not read: as in Sloth, an OpenSLO SLO compiles without alerts; "
        "to alert on it, write it as a modelmon/v1 or prometheus/v1 file",
    ),
    (
        v1(INLINE, objectives="- target: 99.5"),
        "99.5",
        "spec.objectives[0].target: must be a ratio between 0 and 1 exclusive (got 99.5)",
    ),
    (
        v1("indicatorRef: nowhere"),
        "nowhere",
        "spec.indicatorRef: no kind: SLI document of this name in the file (found: none)",
    ),
    (
        v1(INLINE.replace("type: Prometheus", "type: Datadog", 1)),
        "Datadog",
        "spec.indicator.spec.ratioMetric.good.metricSource.type: must be Prometheus: modelmon reads Prometheus queries",
    ),
    (
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: fast-burn}\nspec: {}\n",
        "apiVersion",
        "kind 'AlertPolicy' of openslo/v1 is not read; modelmon reads SLO, SLI, Service",
    ),
]


@pytest.mark.parametrize(("text", "needle", "message"), REFUSED)
def test_what_openslo_says_and_modelmon_cannot_compile_is_refused_where_it_is_written(project, text, needle, message):
    # The value is what is refused: the error stands where it starts.
    part = "{}" if needle.endswith(": {}") else None
    assert errors(project, text) == [f"slos/api.yaml:{at(text, needle, part)}: {message}"]


def test_an_openslo_query_error_names_the_query_as_the_file_writes_it(project):
    text = v1(INLINE.replace(TOTAL, TOTAL.replace("[{{.window}}]", "[5m]")))
    [error] = errors(project, text)
    position = at(text, 'query: \'sum(rate(http_requests_total{job="api"}[5m', "'")
    assert error.startswith(
        f"slos/api.yaml:{position}: spec.indicator.spec.ratioMetric.total.metricSource.spec.query: "
    ), error


MORE_REFUSED = [
    (
        V1ALPHA.replace("count: 30", "count: ²"),
        "²",
        "spec.timeWindows[0].count: must be a whole number of days (got '²')",
    ),
    (
        v1(INLINE, objectives="- targetPercent: 1e999999999"),
        "1e999999999",
        "spec.objectives[0].targetPercent: must be a percentage between 0 and 100 exclusive (got 1e999999999)",
    ),
    (v1(INLINE, objectives="- target: [0.9]"), "[0.9]", "spec.objectives[0].target: must be a number (got a list)"),
    (
        V1ALPHA.replace("      target: 0.999\n", "      target: 0.999\n      target: 0.5\n"),
        "target: 0.5",
        "spec.objectives[0].target: duplicate key 'target'",
    ),
    (
        v1(INLINE).replace("budgetingMethod:", "budgetingMetod:"),
        "budgetingMetod",
        "spec.budgetingMetod: unknown field 'budgetingMetod'; did you mean 'budgetingMethod'?",
    ),
    (
        V1ALPHA.replace("unit: Day", "unit: Day\n      isRolling: false"),
        "false",
        "spec.timeWindows[0].isRolling: calendar windows are not supported: modelmon's periods are rolling",
    ),
    (
        v1(INLINE).replace("isRolling: true", "isRolling: true\n      calendar: {startTime: 2026-01-01}"),
        "{startTime",
        "spec.timeWindow[0].calendar: calendar windows are not supported: modelmon's periods are rolling",
    ),
    (
        V1ALPHA.replace(GOOD, GOOD.replace("[{{.window}}]", "[5m]")),
        '\'sum(rate(http_requests_total{job="api",code!~"5.."}[5m]',
        "spec.objectives[0].ratioMetrics.good.query: must contain the {{.window}} placeholder where the range goes",
    ),
]


@pytest.mark.parametrize(("text", "needle", "message"), MORE_REFUSED)
def test_odd_openslo_input_is_refused_where_it_is_written(project, text, needle, message):
    assert errors(project, text) == [f"slos/api.yaml:{at(text, needle)}: {message}"]


def test_openslo_merge_keys_and_an_empty_time_window_list_read_as_yaml_and_sloth_read_them(project):
    text = V1ALPHA.replace("      target: 0.999\n", "      <<: {target: 0.99}\n").replace(
        "  timeWindows:\n    - count: 30\n      unit: Day\n", "  timeWindows: []\n"
    )
    [plan] = compiled(project, text).plans["api"]
    assert (str(plan.objective), plan.period) == ("99", "30d")


def test_two_openslo_slis_of_one_name_are_refused(project):
    sli = "apiVersion: openslo/v1\nkind: SLI\nmetadata:\n  name: ok\nspec:\n  ratioMetric:\n"
    sli += f"    good: {prometheus(GOOD)}\n    total: {prometheus(TOTAL)}\n"
    text = sli + "---\n" + sli + "---\n" + v1("indicatorRef: ok")
    assert errors(project, text) == [
        f"slos/api.yaml:{at(text, 'name: ok', 'ok', occurrence=2)}: metadata.name: an SLI of this name is also "
        "defined at line 1"
    ]


def test_a_query_promtool_refuses_is_placed_at_the_ratio_metric_it_comes_from(project):
    text = v1(INLINE.replace(TOTAL, TOTAL.replace("sum(rate(", "sum((rate(")))
    [error] = errors(project, text)
    assert error.startswith(f"slos/api.yaml:{at(text, 'counter: true')}: spec.indicator.spec.ratioMetric: promtool"), (
        error
    )


def test_a_label_value_beyond_float32_is_infinite_as_for_sloth(project):
    text = "version: prometheus/v1\nservice: api\nlabels:\n  big: 1.0e+39\n"
    text += (
        "slos:\n  - name: requests\n    objective: 99.9\n    sli:\n      events:\n"
        f"        error_query: '{BAD}'\n        total_query: '{TOTAL}'\n"
    )
    [plan] = compiled(project, text).plans["api"]
    assert plan.labels["big"] == "+Inf"


def test_an_sli_document_is_checked_once_whether_or_not_an_slo_names_it(project):
    sli = "apiVersion: openslo/v1\nkind: SLI\nmetadata:\n  name: ok\nspec:\n  thresholdMetric: {}\n"
    expected = "spec.thresholdMetric: threshold metrics are not supported: modelmon reads ratio metrics"
    assert errors(project, sli) == [f"slos/api.yaml:{at(sli, '{}')}: {expected}"]
    text = sli + "---\n" + v1("indicatorRef: ok")
    assert errors(project, text) == [f"slos/api.yaml:{at(text, '{}')}: {expected}"]
