"""The model of Prometheus 2 and 3 behind the generated tests' expectations, on cases where the
two engines differ (the promtool runs of tests/test_promtool.py check the model against both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon import build
from modelmon.durations import parse_duration
from modelmon.outputs.promtool_tests import simulation as simulation_module
from modelmon.outputs.promtool_tests import writer
from modelmon.outputs.promtool_tests.scenarios import Scenario, scenarios, simulation
from modelmon.outputs.promtool_tests.simulation import avg_over_time, rate, rates, summed
from modelmon.outputs.promtool_tests.traffic import TOTAL_PER_S, Phase, Traffic, errors_per_s, series_labels
from modelmon.outputs.promtool_tests.writer import promql_round
from tests.project_files import EVERY_FORM

REPO = Path(__file__).resolve().parent.parent

# 1/s for five minutes, then 2/s: a counter sampled every minute from 0.
KINKED = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 420.0, 540.0, 660.0, 780.0, 900.0]


@pytest.fixture(scope="module")
def plans():
    return {plan.name: plan for service in build.compile_all(REPO).project.services for plan in service.slos}


def test_prometheus_2_counts_the_sample_on_the_range_start_and_3_leaves_it_out():
    # At 8m: 2 reads 3m..8m (180 -> 660 over exactly 5m), 3 reads 4m..8m and extrapolates 4m to 5m.
    assert rate(KINKED, 8, 5, version=2) == (660 - 180) / 300
    assert rate(KINKED, 8, 5, version=3) == (660 - 240) * 1.25 / 300
    # Even where the range holds one rate, 3 extrapolates 3m to 4m and lands a bit off.
    assert rate(KINKED, 10, 4, version=2) == 2.0
    assert rate(KINKED, 10, 4, version=3) == 1.9999999999999998
    # Two samples make a rate; 3 has only one of them in (t-1m, t].
    assert rate(KINKED, 1, 1, version=2) == 1.0
    assert rate(KINKED, 1, 1, version=3) is None


def test_samples_off_the_evaluations_read_alike_on_both_engines():
    """Scraped half a unit off: no range starts on a sample, so 2 and 3 select the same ones."""
    traffic = [Traffic({"model": "m"}, [Phase(0, TOTAL_PER_S, 0.0), Phase(7, TOTAL_PER_S, TOTAL_PER_S)])]
    plan = _any_plan()
    on = [simulation(plan, traffic, 30, version=v) for v in (2, 3)]
    assert all(sim.offset for sim in on)  # traffic that changes is always scraped off the grid
    for minute in range(2, 31):
        for window in (1, 5, 30):
            assert on[0].rate("bad", window, minute, ("m",)) == on[1].rate("bad", window, minute, ("m",))
    # The input series: a value every other half minute, the first at 0m30s.
    values = on[0].input_values(on[0].counters[0][0])
    assert on[0].input_interval == 30
    assert values[0] is None and values[1] == TOTAL_PER_S * 30 and values[2] is None
    assert all(v is None for v in values[::2]) and None not in values[1::2]


def _any_plan():
    return next(iter(build.compile_all(REPO).project.services[0].slos))


def test_prometheus_3_divides_the_compensated_sum_where_2_takes_an_incremental_mean():
    values = [13.546875, 15.0625, 8.09375, 6.296875, 9.4375, 13.65625, 0.5625]
    assert avg_over_time(values, 2) == 9.522321428571427
    assert avg_over_time(values, 3) == 9.522321428571429
    # Equal values average to themselves on both.
    assert avg_over_time([0.25] * 360, 2) == avg_over_time([0.25] * 360, 3) == 0.25


def test_prometheus_3_compensates_sum_and_2_adds_plainly():
    values = [1e16, 1.0, -1e16]
    assert summed(values, 2) == 0.0
    assert summed(values, 3) == 1.0


def test_promql_round_matches_the_engine_and_two_neighbours_round_alike():
    assert promql_round(0.49987792968750033, 1e-11) == promql_round(0.4998779296874999, 1e-11)
    # Halfway between two steps of 1e-12: the neighbours round apart there, hence the coarser steps.
    assert promql_round(0.49987792968750033, 1e-12) != promql_round(0.4998779296874999, 1e-12)


def test_the_shipped_slos_leave_out_no_check_for_either_engine(plans):
    for plan in plans.values():
        for scenario in scenarios(plan):
            writer.test_group(plan, scenario)
            assert scenario.left_out == [], (plan.name, scenario.title)


def test_a_check_the_engines_answer_differently_is_left_out_and_noted(plans):
    """The old outage design: six healthy hours, then the outage, checked once the 6h page fires with
    its window full, where Prometheus 2 holds one tile more than 3."""
    plan = plans["availability"]
    [labels] = series_labels(plan, 1)
    ok = errors_per_s(0.005)
    traffic = [Traffic(labels, [Phase(0, TOTAL_PER_S, ok), Phase(360, TOTAL_PER_S, TOTAL_PER_S)])]
    scenario = Scenario("outage after 6h", traffic, 400, alert_minutes={"ModelAvailabilityBudgetBurn": [382]})
    group = writer.test_group(plan, scenario)
    assert "alert_rule_test" not in group
    assert scenario.left_out == [("ModelAvailabilityBudgetBurn", "6h22m")]
    assert group["name"].endswith("(left out, Prometheus 2 and 3 differ there: ModelAvailabilityBudgetBurn at 6h22m)")
    sims = [scenario.simulation(plan, v) for v in (2, 3)]
    six_hours = [s.alerts("ModelAvailabilityBudgetBurn", 382) for s in sims]
    assert six_hours[0] != six_hours[1]


def _counters_step_by_step(traffic: Traffic, length: int, unit: int, per_unit: int) -> tuple[list, list]:
    """The counters as the definition says, one step at a time: each step adds the rates of the
    latest phase started by then."""
    total, errors = [0.0], [0.0]
    seconds = unit / per_unit
    for at in range(length * per_unit):
        current = [p for p in traffic.phases if p.start * per_unit <= at][-1:] or traffic.phases[:1]
        total.append(total[-1] + current[0].total * seconds)
        errors.append(errors[-1] + current[0].errors * seconds)
    return total, errors


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    starts=st.lists(st.integers(0, 200), min_size=0, max_size=4),
    rates=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 65536)), min_size=5, max_size=5),
    length=st.integers(0, 300),
    unit=st.sampled_from([60, 30, 15, 1]),
    per_unit=st.sampled_from([1, 2]),
)
def test_counters_are_the_step_by_step_sums_to_the_last_bit(starts, rates, length, unit, per_unit):
    """The running sums are taken at C speed (itertools.accumulate), in the same order of additions."""
    phases = [
        Phase(start, total / 2, errors / 64)
        for start, (total, errors) in zip([0, *sorted(starts)], rates, strict=False)
    ]
    traffic = Traffic({"model": "m"}, phases)
    assert traffic.counters(length, unit, per_unit) == _counters_step_by_step(traffic, length, unit, per_unit)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False), max_size=60),
    start=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    window=st.integers(min_value=1, max_value=40),
    step=st.integers(min_value=1, max_value=4),
    first=st.integers(min_value=0, max_value=3),
    unit=st.sampled_from([60, 30.0, 15.0, 7.5]),
    version=st.sampled_from([2, 3]),
)
def test_rates_at_every_time_are_rate_at_each_to_the_last_bit(steps, start, window, step, first, unit, version):
    """The test model computes a rate at every evaluation at once (simulation.rates): each value, and
    whether there is one, must be what rate() gives alone, bit for bit, or the expectations move."""
    counter = [start]
    for increase in steps:
        counter.append(counter[-1] + increase)
    at = np.arange(len(counter) + 3)  # past the last sample too
    values, valid = rates(counter, at, window, step, unit, first, version)
    for t, value, ok in zip(at.tolist(), values.tolist(), valid.tolist(), strict=True):
        expected = rate(counter, t, window, step, unit, first, version)
        assert (expected is not None) == ok, t
        if ok:
            assert value == expected, (t, value, expected)


def _every_form_plans(tmp_path_factory) -> list:
    root = tmp_path_factory.mktemp("every-form")
    (root / "slos").mkdir()
    (root / "slos" / "checkout.yaml").write_text(EVERY_FORM.lstrip())
    return [plan for service in build.compile_all(root).project.services for plan in service.slos]


def test_every_alerts_series_is_its_state_machine_stepped_one_evaluation_at_a_time(plans, tmp_path_factory):
    """holds_series and fires_series compute every evaluation at once (numpy); condition() and the
    AlertState replay compute one at a time. On every scenario of the shipped SLOs and of every
    SLI form, both engines, each alert and group: the same booleans at every evaluation, and the
    same first firing."""
    compared = 0
    for plan in [*plans.values(), *_every_form_plans(tmp_path_factory)]:
        for scenario in scenarios(plan):
            for version in (2, 3):
                simulation_module.clear_cores()  # nothing computed by the other path is reused
                sim = scenario.simulation(plan, version)
                for alert in plan.alerts():
                    for key in sim.groups:
                        stepped = [(at, fired) for at, fired in sim._replay(alert, key, 0, sim.length)]
                        holds = [sim.condition(alert, at, key)[0] for at, _ in stepped]
                        assert sim.holds_series(alert, key).tolist() == holds, (plan.name, scenario.title, alert.name)
                        fires = sim.fires_series(alert, key).tolist()
                        assert fires == [fired for _, fired in stepped], (plan.name, scenario.title, alert.name)
                        first = next((at for at, fired in stepped if fired), None)
                        assert sim.first_firing(alert, key) == first
                        compared += len(stepped)
                at = range(0, sim.length + 1, sim.every)
                for key in sim.groups:  # what the recorded inputs and tiles are made of
                    for window in {sim.units(parse_duration(w)) for w in plan.raw_windows}:
                        ratios = [sim.raw_ratio(window, m, key) for m in at]
                        assert [None if v != v else v for v in sim._raw_ratio_series(window, key).tolist()] == ratios
                        for role in ("total", "bad") if plan.total is not None else ():
                            rates = [sim.rate(role, window, m, key) for m in at]
                            assert [None if v != v else v for v in sim._rates(role, window, key).tolist()] == rates
    assert compared > 100_000
