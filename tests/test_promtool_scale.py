"""promtool test generation at scale: SLOs of one shape share their simulation, and what they
share changes no byte of the tests (modelmon/outputs/promtool_tests/simulation.py, _Core)."""

from __future__ import annotations

import pytest

from modelmon import build
from modelmon.outputs.promtool_tests import simulation

# Alike and unlike SLOs in one file: the same shape under other names, labels, selectors and
# alert names; other objectives, periods, windows, thresholds and `for`s; every SLI form.
MIX = """
version: modelmon/v1
service: mix
labels: {team: platform}
slos:
  - name: availability-a
    objective: 99.5
    sli: {availability: {}}
  - name: availability-b
    objective: 99.5
    labels: {tier: gold}
    sli: {availability: {}}
    alerting: {name: MixOtherName}
  - name: availability-claude
    objective: 99.5
    sli: {availability: {selector: 'model=~"claude.*"'}}
  - name: availability-strict
    objective: 99.95
    period: 28d
    sli: {availability: {}}
  - name: errors
    objective: 99
    sli: {error_rate: {warning_above: 2, critical_above: 5}}
  - name: errors-again
    objective: 99
    sli: {error_rate: {warning_above: 2, critical_above: 5}}
  - name: latency
    objective: 95
    sli: {latency: {threshold_ms: 2500}}
  - name: latency-slower
    objective: 95
    sli: {latency: {threshold_ms: 5000}}
  - name: events
    objective: 99.9
    sli:
      events:
        error_query: sum by (route) (rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum by (route) (rate(http_requests_total[{{.window}}]))
        group_by: [route]
  - name: raw
    objective: 99
    sli: {raw: {error_ratio_query: 'job:errors:ratio_rate{{.window}}'}}
  - name: windows
    objective: 99.5
    sli: {availability: {}}
    alerting:
      windows:
        - {severity: page, long: 1h, short: 5m, budget_percent: 2}
        - {severity: ticket, long: 3d, short: 6h, budget_percent: 10, for: 15m}
"""


@pytest.fixture
def mix(tmp_path):
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "mix.yaml").write_text(MIX.lstrip())
    return tmp_path


def test_shared_simulations_write_the_same_tests_as_one_simulation_per_slo(mix, monkeypatch):
    simulation._CORES.clear()
    shared = build.compile_all(mix).files
    assert len(simulation._CORES) > 0, "the shared path was not taken"
    monkeypatch.setattr(simulation, "SHARING", False)
    simulation._CORES.clear()
    alone = build.compile_all(mix).files
    assert not simulation._CORES
    tests = sorted(path for path in alone if path.startswith("prometheus/tests/"))
    assert tests and all(shared[path] == alone[path] for path in tests)
    assert shared == alone


def test_slos_of_one_shape_share_their_simulations_and_others_do_not(mix):
    """availability-a and -b differ only in names and labels: one set of cores serves both;
    the stricter objective is another shape."""
    plans = {plan.name: plan for plan in build.compile_all(mix).project.services[0].slos}
    shape = simulation.plan_shape
    assert shape(plans["availability-a"]) == shape(plans["availability-b"])
    assert shape(plans["availability-a"]) != shape(plans["availability-strict"])
    assert shape(plans["errors"]) == shape(plans["errors-again"])
    assert shape(plans["latency"]) == shape(plans["latency-slower"])  # the threshold is in the traffic
