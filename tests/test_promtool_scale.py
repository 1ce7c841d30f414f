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
    simulation.clear_cores()
    shared = build.compile_all(mix).files
    assert len(simulation._CORES) > 0, "the shared path was not taken"
    monkeypatch.setattr(simulation, "SHARING", False)
    simulation.clear_cores()
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


# --- The closure, on hand-made files --------------------------------------------------------

RULES = {
    "groups": [
        {
            "name": "g",
            "rules": [
                {"record": "a:x:rate5m", "expr": "sum(rate(x_total[5m]))", "labels": {"slo": "a"}},
                {"record": "a:x:rate5m", "expr": "sum(rate(y_total[5m]))", "labels": {"slo": "b"}},
                {"record": "b:only:ratio", "expr": 'a:x:rate5m{slo="b"} / 2'},
                {"record": "unread:by:anyone", "expr": "vector(1)"},
                {"alert": "A", "expr": 'a:x:rate5m{slo="a"} > 1', "annotations": {"summary": "x"}},
                {"alert": "B", "expr": "b:only:ratio > 1"},
            ],
        }
    ]
}


def kept_by(test_group: dict, rules: dict = RULES) -> dict[str, list[str]]:
    """{SLO: the records and alerts of its piece}, with `test_group` as SLO "s/a" and a group of "s/b"."""
    tests = {
        "evaluation_interval": "1m",
        "tests": [
            {"name": "s/a: mine", **test_group},
            {"name": "s/b: other", "alert_rule_test": [{"eval_time": "1m", "alertname": "B", "exp_alerts": []}]},
        ],
    }
    return {
        piece.name: [r.get("record") or r["alert"] for g in piece.rules["groups"] for r in g["rules"]]
        for piece in focused.split(tests, [rules])
    }


def test_a_piece_keeps_the_makers_its_checks_read_and_drops_those_whose_labels_rule_them_out():
    pieces = kept_by({"alert_rule_test": [{"eval_time": "1m", "alertname": "A", "exp_alerts": []}]})
    assert pieces == {
        "s/a": ["a:x:rate5m", "unread:by:anyone", "A"],  # the slo="b" maker is ruled out by A's matcher
        "s/b": ["a:x:rate5m", "b:only:ratio", "unread:by:anyone", "B"],
    }


def test_a_rule_no_test_depends_on_runs_in_every_piece():
    """Its evaluation errors (a duplicate labelset, say) must still fail the tests."""
    pieces = kept_by({"promql_expr_test": [{"expr": 'a:x:rate5m{slo="a"}', "eval_time": "1m", "exp_samples": []}]})
    assert all("unread:by:anyone" in kept for kept in pieces.values())


@pytest.mark.parametrize(
    "expr",
    [
        '{__name__=~"a:.*"}',  # a record named by a matcher
        'vector(0) < 0 or {__name__="a:x:rate5m"}',
        "a:x:rate5m{note!='slo=\"b\"'}",  # single quotes: a matcher inside a value must not rule a maker out
    ],
)
def test_reads_the_matcher_syntax_cannot_tell_keep_every_maker(expr):
    pieces = kept_by({"promql_expr_test": [{"expr": expr, "eval_time": "1m", "exp_samples": []}]})
    assert pieces["s/a"].count("a:x:rate5m") == 2


def test_a_template_that_queries_a_record_keeps_its_maker():
    rules = yaml.safe_load(yaml.safe_dump(RULES))
    rules["groups"][0]["rules"][4]["annotations"]["summary"] = '{{ with query "b:only:ratio" }}{{ . }}{{ end }}'
    pieces = kept_by({"alert_rule_test": [{"eval_time": "1m", "alertname": "A", "exp_alerts": []}]}, rules)
    assert "b:only:ratio" in pieces["s/a"]


def hand_made_project(root: Path, test_text: str) -> Path:
    (root / "slos").mkdir(parents=True)
    (root / "rules").mkdir()
    (root / "rules" / "x.yml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    (root / "prometheus" / "tests").mkdir(parents=True)
    (root / "prometheus" / "tests" / "x.test.yml").write_text(test_text)
    return root


@pytest.mark.parametrize(
    ("text", "passes"),
    [("tests: [\n  - name: unclosed\n", False), ("", True), ("rule_files: [missing.yml]\ntests: []\n", True)],
)
def test_a_test_file_modelmon_could_not_have_written_is_left_to_promtool_whole(tmp_path, capsys, text, passes):
    """Once a traceback (broken YAML, an empty file): now promtool's own verdict, as before."""
    root = hand_made_project(tmp_path, text)
    code = cli.main(["--root", str(root), "test"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == (0 if passes else cli.EXIT_TESTS), captured.err
    assert "modelmon-test-" not in captured.err, "a scratch path was shown"


def test_whole_files_runs_the_test_files_as_plain_promtool_does(tmp_path, capsys):
    test = {
        "rule_files": ["../../rules/x.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "s/a: x rises",
                "interval": "1m",
                "input_series": [{"series": "x_total", "values": "0+60x10"}],
                "promql_expr_test": [
                    {
                        "expr": 'a:x:rate5m{slo="a"}',
                        "eval_time": "5m",
                        "exp_samples": [{"labels": 'a:x:rate5m{slo="a"}', "value": 1}],
                    }
                ],
            }
        ],
    }
    root = hand_made_project(tmp_path, yaml.safe_dump(test, sort_keys=False))
    for mode in ([], ["--whole-files"]):
        assert cli.main(["--root", str(root), "test", *mode]) == 0, capsys.readouterr().err
    test["tests"][0]["promql_expr_test"][0]["exp_samples"][0]["value"] = 2
    (root / "prometheus" / "tests" / "x.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    for mode in ([], ["--whole-files"]):
        assert cli.main(["--root", str(root), "test", *mode]) == cli.EXIT_TESTS
        assert "FAILED s/a: x rises  (prometheus/tests/x.test.yml)" in capsys.readouterr().err


def test_generating_a_files_tests_costs_no_more_than_generating_each_slo_alone(tmp_path, monkeypatch):
    """Counted, not timed: the rates simulated for a file of SLOs are those simulated for each SLO
    in a file of its own (no SLO's tests grow with its neighbours), so generating N SLOs' tests is
    linear in N. A generator that simulated neighbours too would count N times over here."""
    calls = [0]
    counted = simulation.Simulation.rate

    def rate(self, *args, **kwargs):
        calls[0] += 1
        return counted(self, *args, **kwargs)

    monkeypatch.setattr(simulation.Simulation, "rate", rate)
    monkeypatch.setattr(simulation, "SHARING", False)  # each SLO simulated on its own: counts add up exactly
    objectives = ("99", "99.5", "99.9", "95", "97.5")

    def generated(specs: dict[str, str]) -> int:
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        (root / "slos").mkdir()
        for name, text in specs.items():
            (root / "slos" / name).write_text(text)
        calls[0] = 0
        build.compile_all(root)
        return calls[0]

    def spec(service: str, slos: list[str]) -> str:
        items = "".join(
            f"  - name: a{o.replace('.', '-')}\n    objective: {o}\n    sli: {{availability: {{}}}}\n" for o in slos
        )
        return f"version: modelmon/v1\nservice: {service}\nslos:\n{items}"

    alone = [generated({"s.yaml": spec("s", [objective])}) for objective in objectives]
    together = generated({"s.yaml": spec("s", list(objectives))})
    assert min(alone) > 0
    assert together == sum(alone)
