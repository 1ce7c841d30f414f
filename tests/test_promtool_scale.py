"""promtool test generation at scale: SLOs of one shape share their simulation, and what they
share changes no byte of the tests (modelmon/outputs/promtool_tests/simulation.py, _Core)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from modelmon import build, cli, focused
from modelmon.outputs.promtool_tests import simulation
from tests.project_files import EVERY_FORM

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


# --- promtool: each SLO's tests against only the rules they depend on ---------------------


def built(root: Path) -> Path:
    build.write_all(root, build.compile_all(root))
    return root


@pytest.fixture(scope="module")
def every_form(tmp_path_factory) -> Path:
    """Built: an events SLI with its own group_by, a raw one over 28 days, and a shortcut with a
    selector and its own windows (the shipped project has the three shortcuts with defaults)."""
    root = tmp_path_factory.mktemp("every-form")
    (root / "slos").mkdir()
    (root / "slos" / "checkout.yaml").write_text(EVERY_FORM.lstrip())
    return built(root)


def test_every_slo_passes_against_only_the_rules_its_tests_depend_on(every_form, capsys):
    """If the closure left out a rule a check depends on, that check would read no series and
    fail. (The shipped project's tests run both ways: tests/test_promtool.py, tests/test_wheel.py.)"""
    assert cli.main(["--root", str(every_form), "test"]) == 0, capsys.readouterr().err
    whole = sum(len(g["rules"]) for g in yaml.safe_load((every_form / "rules" / "checkout.yml").read_text())["groups"])
    with tempfile.TemporaryDirectory() as scratch:
        tests = sorted((every_form / "prometheus" / "tests").glob("*.yml"))
        pieces = [piece for test in tests for _, piece in focused.write(test, Path(scratch))]
    assert {piece.name for piece in pieces} == {"checkout/requests", "checkout/ratio", "checkout/eu-availability"}
    kept = [sum(len(g["rules"]) for g in piece.rules["groups"]) for piece in pieces]
    assert all(0 < count < whole for count in kept), (kept, whole)


def test_a_focused_run_tests_the_committed_rule_of_its_slo(every_form, tmp_path, capsys):
    """A changed threshold in the committed rules fails the tests of that SLO, and only those."""
    root = tmp_path / "mutated"
    shutil.copytree(every_form, root)
    rules_file = root / "rules" / "checkout.yml"
    doc = yaml.safe_load(rules_file.read_text())
    [alerts] = [g for g in doc["groups"] if g["name"] == "checkout-eu-availability-alerts"]
    page = next(rule for rule in alerts["rules"] if rule.get("labels", {}).get("long_window") == "1h")
    page["expr"] = re.sub(r"> [0-9.e-]+", "> 0.9", page["expr"])
    rules_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert cli.main(["--root", str(root), "test"]) == cli.EXIT_TESTS
    failed = re.findall(r"^FAILED (\S+): ", capsys.readouterr().err, re.M)
    assert failed and set(failed) == {"checkout/eu-availability"}


def same_slos(count: int) -> str:
    return "version: modelmon/v1\nservice: many\nslos:\n" + "".join(
        f"  - {{name: s{i}, objective: 99.5, sli: {{availability: {{}}}}}}\n" for i in range(count)
    )


def evaluations(root: Path) -> tuple[int, int]:
    """Rule evaluations promtool makes for the project's tests: focused, and against the whole file."""
    focused_total = whole_total = 0
    with tempfile.TemporaryDirectory() as scratch:
        for test in sorted((root / "prometheus" / "tests").glob("*.yml")):
            doc = yaml.safe_load(test.read_text())
            rules = sum(len(g["rules"]) for g in yaml.safe_load((root / "rules" / "many.yml").read_text())["groups"])
            for _, piece in focused.write(test, Path(scratch)):
                focused_total += piece.evaluations
            interval = focused._seconds(doc["evaluation_interval"])
            whole_total += rules * sum(focused._steps(group, interval) for group in doc["tests"])
    return focused_total, whole_total


@pytest.mark.parametrize("count", [10, 40])
def test_rule_evaluations_grow_linearly_with_the_slos_of_a_file(tmp_path, count):
    """Counted, not timed: what promtool evaluates for `count` SLOs of one file is `count` times
    what it evaluates for one, where against the whole file it grows with the square."""
    per_slo = {}
    for n in (1, count):
        root = tmp_path / str(n)
        (root / "slos").mkdir(parents=True)
        (root / "slos" / "many.yaml").write_text(same_slos(n))
        per_slo[n] = evaluations(built(root))
    (one, one_whole), (many, many_whole) = per_slo[1], per_slo[count]
    assert many <= count * one * 1.01
    assert many_whole >= count * one_whole * count / 3  # the quadratic cost the focused runs avoid
