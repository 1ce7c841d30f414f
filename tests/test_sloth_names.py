"""Sloth's names on modelmon's rules (`compatibility: sloth`), judged by real Sloth.

A team keeps its Sloth dashboards, its Sloth UI and its Alertmanager routes: they select an
SLO's series by Sloth's record names and `sloth_*` labels. For each example, real Sloth
(the pinned build) writes its rules and modelmon compiles the same spec with
`compatibility: sloth`: every series Sloth records, under its name and labels, modelmon
records too, every alert Sloth writes modelmon writes under its name and severity, and the
queries of Sloth's own UI (`sloth server`, v0.16), run by the pinned promtool over the same
traffic, find the same SLOs, windows, periods, objectives and firing alerts in both.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from modelmon import build, cli
from modelmon.conventions import SLOTH_NAMES_VERSION
from modelmon.durations import parse_duration, prometheus_duration
from tests import binaries
from tests import sloth_comparison as compare
from tests.test_sloth_comparison import EXAMPLES
from tests.test_sloth_inputs import errors, events_service, rules_of
from tests.test_validation import at
from tools import build as tools

# The instant queries Sloth v0.16's UI runs to list SLOs and their state
# (internal/http/backend/storage/prometheus/cache.go of the pinned module), and the range
# query of an SLO's availability chart (prometheus.go), shown here for one SLO of the example.
UI_QUERIES = (
    'sloth_slo_info{sloth_id!=""}',
    'count({__name__=~"^slo:sli_error:ratio_rate.*"}) by (__name__, sloth_id)',
    'max(slo:time_period:days{sloth_id!=""}) by (sloth_id)',
    'slo:current_burn_rate:ratio{sloth_id!=""}',
    'ALERTS{sloth_id!=""}',
    'slo:period_error_budget_remaining:ratio{sloth_id!=""}',
)
# The labels the UI reads from each query's series (the rest it only uses to tell groups apart).
UI_LABELS = (
    "__name__",
    "alertstate",
    "sloth_window",
    "sloth_id",
    "sloth_service",
    "sloth_slo",
    "sloth_objective",
    "alertname",
    "sloth_severity",
)
# Sloth's default period, and the one the 28-day runs ask of both.
PERIODS = ("30d", "28d")


def compatible(text: str, period: str) -> str:
    """A Sloth file with modelmon's compatibility switch (and period) added: Sloth ignores both."""
    text = re.sub(r"^(service: .*)$", r"\1\ncompatibility: sloth", text, count=1, flags=re.M)
    if period != "30d":
        text = re.sub(r"^(\s*)objective: (.*)$", rf"\1objective: \2\n\1period: {period}", text, flags=re.M)
    return text


def rules_of_both(example: str, period: str, root: Path, out: Path) -> tuple[dict, dict]:
    source = tools.source("sloth") / "examples" / example
    (root / "slos" / example).write_text(compatible(source.read_text(), period))
    sloth = out / "sloth.yml"
    run = subprocess.run(
        [binaries.pinned("sloth"), "generate", "-i", str(source), "-o", str(sloth), f"--default-slo-period={period}"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    service = yaml.safe_load(source.read_text())["service"]
    ours = out / "modelmon.yml"
    ours.write_text(build.compile_all(root).files[f"rules/{service}.yml"])
    return yaml.safe_load(sloth.read_text()), yaml.safe_load(ours.read_text())


def rules(file: dict) -> list[dict]:
    return [rule for group in file["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("example", [*sorted(EXAMPLES), "no-alerts.yml"])
def test_every_series_and_alert_sloth_writes_modelmon_writes_under_its_name_and_labels(
    example, period, project, tmp_path
):
    sloth, ours = rules_of_both(example, period, project({}), tmp_path)
    recorded: dict[str, list[dict]] = {}
    for rule in rules(ours):
        if "record" in rule:
            recorded.setdefault(rule["record"], []).append(rule["labels"])
    for rule in rules(sloth):
        if "record" not in rule:
            continue
        # Which tool wrote the series, and its version, are the two labels that differ.
        wanted = {k: str(v) for k, v in rule["labels"].items() if k not in ("sloth_mode", "sloth_version")}
        found = recorded.get(rule["record"], [])
        assert any(wanted.items() <= labels.items() for labels in found), (rule["record"], wanted, found)
    # The same windows, the period's by Sloth's name for it (ratio_rate4w for 28 days) among them.
    windows = {r["record"] for r in rules(sloth) if r.get("record", "").startswith("slo:sli_error:ratio_rate")}
    assert windows == {r for r in recorded if re.fullmatch(r"slo:sli_error:ratio_rate\d+[smhdwy]", r)}
    assert f"slo:sli_error:ratio_rate{prometheus_duration(parse_duration(period))}" in windows
    # Each alert under Sloth's name, page or ticket as Sloth says, with the spec's labels (modelmon
    # writes a rule per window pair where Sloth joins the two of a severity with `or`).
    theirs = {(r["alert"], r["labels"]["sloth_severity"]) for r in rules(sloth) if "alert" in r}
    mine = [r for r in rules(ours) if "alert" in r and r["alert"] in {name for name, _ in theirs}]
    assert {(r["alert"], r["labels"]["sloth_severity"]) for r in mine} == theirs
    for rule in (r for r in rules(sloth) if "alert" in r):
        assert any(rule["labels"].items() <= r["labels"].items() for r in mine if r["alert"] == rule["alert"])


def evaluated(rules_file: Path, series: list[dict], minute: int) -> dict[str, list[tuple[dict, float]]]:
    """Each UI query at `minute`: the series it returns, as (labels the UI reads, value)."""
    found = compare.evaluated(rules_file, list(UI_QUERIES), [minute], series)
    return {
        query: [({k: v for k, v in labels.items() if k in UI_LABELS}, value) for labels, value in samples]
        for (query, _), samples in found.items()
    }


def shape(samples: list[tuple[dict, float]]) -> list[dict]:
    return sorted((labels for labels, _ in samples), key=lambda labels: sorted(labels.items()))


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_sloths_ui_finds_the_same_slos_windows_and_alerts_in_modelmons_rules(example, project, tmp_path):
    _, _, objective, traffic = EXAMPLES[example]
    rules_of_both(example, "30d", project({}), tmp_path)
    # An hour into a 14.4x burn both page (docs/migration.md); the data is two hours old.
    scenario = next(s for s in compare.scenarios(objective) if s.name == "burn-14.4x-above")
    series = traffic.series(scenario)
    sloth = evaluated(tmp_path / "sloth.yml", series, 120)
    ours = evaluated(tmp_path / "modelmon.yml", series, 120)
    for query in UI_QUERIES:
        assert sloth[query], f"Sloth's rules give {query} nothing: the scenario proves nothing"
        if query.startswith("ALERTS"):
            # Which SLO pages and which tickets is what the UI shows (by sloth_severity): modelmon's
            # window pairs are alerts of their own, and its outage alert pages too.
            firing = {(s["sloth_id"], s["sloth_severity"]) for s, _ in ours[query] if _firing_burn(s)}
            assert firing == {(s["sloth_id"], s["sloth_severity"]) for s, _ in sloth[query] if _firing_burn(s)}
            continue
        assert shape(ours[query]) == shape(sloth[query]), query
    # The numbers the UI shows: the same period and burn rate; the budget as modelmon states it
    # (against a whole period of the traffic seen, docs/migration.md), below Sloth's, never above 1.
    [(_, days)] = ours['max(slo:time_period:days{sloth_id!=""}) by (sloth_id)']
    assert days == sloth['max(slo:time_period:days{sloth_id!=""}) by (sloth_id)'][0][1] == 30
    [(_, burn)] = ours['slo:current_burn_rate:ratio{sloth_id!=""}']
    assert burn == pytest.approx(sloth['slo:current_burn_rate:ratio{sloth_id!=""}'][0][1], rel=1e-9)
    [(_, left)] = ours['slo:period_error_budget_remaining:ratio{sloth_id!=""}']
    assert sloth['slo:period_error_budget_remaining:ratio{sloth_id!=""}'][0][1] < left <= 1


def _firing_burn(labels: dict) -> bool:
    return labels["alertstate"] == "firing" and "sloth_severity" in labels


def test_the_names_follow_the_sloth_release_the_tests_compare_with():
    assert tools.pins()["sloth"]["module_version"] == SLOTH_NAMES_VERSION


def test_without_the_switch_a_sloth_file_keeps_modelmons_own_names(project):
    text = events_service("svc")
    compiled = build.compile_all(project({"svc.yaml": text}))
    assert "sloth_" not in compiled.files["rules/svc.yml"]
    both = build.compile_all(project({"svc.yaml": compatible(text, "28d")})).files["rules/svc.yml"]
    assert "slo:sli_error:ratio_rate4w" in both and "sloth_slo_info" in both


@pytest.mark.parametrize("label", ["sloth_id", "sloth_window", "sloth_severity", "sloth_objective"])
def test_a_file_with_the_switch_may_not_set_sloths_labels(project, label):
    text = compatible(events_service("svc"), "30d").replace("slos:\n", f"labels:\n  {label}: x\nslos:\n", 1)
    assert errors(project({"svc.yaml": text})) == [
        f"slos/svc.yaml:{at(text, label)}: labels.{label}: label {label!r} is set by modelmon on the series "
        "and alerts of a file with compatibility: sloth"
    ]


def test_generated_promtool_tests_prove_the_compatible_rules(project, capsys):
    """The switch changes the labels and names the generated tests state: they must still pass."""
    root = project({})
    for example in ("getting-started.yml", "raw-home-wifi.yml", "no-alerts.yml"):
        source = tools.source("sloth") / "examples" / example
        (root / "slos" / example).write_text(compatible(source.read_text(), "28d"))
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


def info_plugin(config: str) -> str:
    return events_service("svc").replace(
        "    alerting:\n",
        f"    plugins:\n      chain:\n        - id: sloth.dev/contrib/info_labels/v1\n          config: {config}\n"
        "    alerting:\n",
    )


def test_the_info_labels_plugin_labels_the_slos_info_series(project):
    """Sloth's plugin merges its labels into sloth_slo_info: modelmon writes that series for it,
    with or without the compatibility switch, and the generated tests state its labels."""
    for text in (
        info_plugin("{labels: {team: payments, tier: '1'}}"),
        compatible(info_plugin("{labels: {a: b}}"), "30d"),
    ):
        compiled = build.compile_all(project({"svc.yaml": text}))
        [info] = [r for r in rules_of(compiled, "svc") if r.get("record") == "sloth_slo_info"]
        plugin = yaml.safe_load(text)["slos"][0]["plugins"]["chain"][0]["config"]["labels"]
        assert plugin.items() <= info["labels"].items()
        assert info["labels"]["sloth_objective"] == "99.9" and info["expr"] == "vector(1)"
        assert "sloth_slo_info" in compiled.files["prometheus/tests/svc.test.yml"]


def test_info_labels_may_have_the_utf8_names_prometheus_3_reads_and_its_tests_quote_them(project, capsys):
    """Sloth's own example names its info labels plug-l1: Prometheus 3 reads any UTF-8 name, and the
    generated tests, which spell the series, quote it (unquoted, promtool cannot parse the series)."""
    root = project({"svc.yaml": info_plugin("{labels: {plug-l1: in-k1, team.name: a/b}}")})
    compiled = build.compile_all(root)
    [info] = [r for r in rules_of(compiled, "svc") if r.get("record") == "sloth_slo_info"]
    assert {"plug-l1": "in-k1", "team.name": "a/b"}.items() <= info["labels"].items()
    tests = compiled.files["prometheus/tests/svc.test.yml"]
    assert '{"plug-l1"="in-k1", service="svc"' in tests and 'sloth_version="v0.16.0", "team.name"="a/b"}' in tests
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


def test_label_names_with_quotes_and_backslashes_are_escaped_where_the_tests_spell_them(project, capsys):
    """The generated tests write the series as PromQL text: a name with a quote or a backslash is a
    quoted string there, escaped (unescaped, promtool cannot parse the series or reads another name)."""
    root = project({"svc.yaml": info_plugin("{labels: {'say\"hi': x, 'c\\d': y}}")})
    compiled = build.compile_all(root)
    [info] = [r for r in rules_of(compiled, "svc") if r.get("record") == "sloth_slo_info"]
    assert {'say"hi': "x", "c\\d": "y"}.items() <= info["labels"].items()
    tests = yaml.safe_load(compiled.files["prometheus/tests/svc.test.yml"])
    spelt = [s["labels"] for g in tests["tests"] for t in g.get("promql_expr_test", []) for s in t["exp_samples"]]
    info_series = [text for text in spelt if text.startswith("sloth_slo_info{")]
    assert info_series and all('"c\\\\d"="y"' in t and '"say\\"hi"="x"' in t for t in info_series)
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("where", ["slo", "file"])
def test_prometheus_2_refusing_an_info_label_name_is_placed_at_the_label(project, capsys, monkeypatch, where):
    """Prometheus 2.42's promtool refuses the UTF-8 name Prometheus 3 reads: the error names the
    plugin label that made it, in the SLO's chain or the file's, not the SLI."""
    monkeypatch.setenv("MODELMON_PROMTOOL", binaries.debian("promtool"))
    text = info_plugin("{labels: {team: a, plug-l1: in-k1}}")
    path = "slos[0].plugins.chain[0]"
    if where == "file":
        plugin = "    plugins:\n      chain:\n        - id: sloth.dev/contrib/info_labels/v1\n"
        plugin += "          config: {labels: {team: a, plug-l1: in-k1}}\n"
        text = text.replace(plugin, "").replace(
            "slos:\n",
            "slo_plugins:\n  chain:\n    - id: sloth.dev/contrib/info_labels/v1\n"
            "      config: {labels: {team: a, plug-l1: in-k1}}\nslos:\n",
            1,
        )
        path = "slo_plugins.chain[0]"
    root = project({"svc.yaml": text})
    assert cli.main(["--root", str(root), "build"]) == 2
    assert (
        f"slos/svc.yaml:{at(text, 'plug-l1')}: {path}.config.labels.plug-l1: promtool rejects the generated rule "
        "sloth_slo_info: invalid label name: plug-l1"
    ) in capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("config", "needle", "message"),
    [
        ("{}", "{}", "config.labels: is required"),
        ("{labels: {}}", "{}}", "config.labels: must not be empty"),
        ("{labels: {__x: y}}", "__x", "config.labels.__x: '__x': names starting with __ are reserved by Prometheus"),
        (
            '{labels: {"a\\tb": y}}',
            '"a',
            "config.labels.a\tb: 'a\\tb' is not a label name: it must be printable text",
        ),
        (
            "{labels: {a: b}, metricName: slo:objective:ratio}",
            "slo:objective:ratio",
            "config.metricName: modelmon puts these labels on sloth_slo_info, its only info series; "
            "leave metricName out",
        ),
        (
            "{labels: {sloth_objective: '1'}}",
            "sloth_objective",
            "config.labels.sloth_objective: label 'sloth_objective' is set by modelmon on sloth_slo_info",
        ),
    ],
)
def test_an_info_labels_config_modelmon_cannot_honour_is_refused_where_written(project, config, needle, message):
    text = info_plugin(config)
    found = errors(project({"svc.yaml": text}))
    assert found == [f"slos/svc.yaml:{at(text, needle)}: slos[0].plugins.chain[0].{message}"]


def test_the_projects_setting_gives_sloths_names_to_files_that_cannot_say_it(project):
    """An OpenSLO file has no field for the switch: modelmon.toml's `compatibility` is every file's."""
    root = project({})
    source = tools.source("sloth") / "examples" / "openslo-getting-started.yml"
    (root / "slos" / "openslo.yml").write_text(source.read_text())
    (root / "modelmon.toml").write_text('compatibility = "sloth"\n')
    [info] = [r for r in rules_of(build.compile_all(root), "my-service") if r.get("record") == "sloth_slo_info"]
    assert info["labels"]["sloth_id"] == "my-service-sloth-slo-my-service-0"
    (root / "modelmon.toml").write_text('slos = "slos"\ncompatibility = "openslo"\n')
    assert errors(root) == ["modelmon.toml:2:1: compatibility: must be one of 'sloth' (got 'openslo')"]


def test_every_page_of_a_sloth_compatible_slo_says_it_is_one(project):
    """Sloth's UI shows a firing page by sloth_severity: modelmon's outage alert pages too."""
    rules = rules_of(build.compile_all(project({"svc.yaml": compatible(events_service("svc"), "30d")})), "svc")
    severities = {r["alert"]: r["labels"].get("sloth_severity") for r in rules if "alert" in r}
    assert severities == {"RequestsBurn": "ticket", "SvcRequestsOutage": "page", "SvcRequestsBudgetExhausted": None}
    assert {r["labels"]["sloth_severity"] for r in rules if r.get("alert") == "RequestsBurn"} == {"page", "ticket"}


def test_two_slos_of_one_sloth_id_are_refused(project):
    """sloth_id is <service>-<slo>: services a-b and a with SLOs c and b-c would share a-b-c."""
    first = compatible(events_service("a-b", alert="A"), "30d").replace("name: requests", "name: c")
    second = compatible(events_service("a", alert="B"), "30d").replace("name: requests", "name: b-c")
    assert errors(project({"a-b.yaml": first, "a.yaml": second})) == [
        f"slos/a.yaml:{at(second, 'b-c')}: slos[0].name: sloth_id 'a-b-c' is also that of SLO 'c' of service "
        f"'a-b' (slos/a-b.yaml:{at(first, 'c' + chr(10))}): Sloth's UI and dashboards would show the two as one SLO; "
        "rename one"
    ]


@pytest.mark.parametrize(
    ("example", "spec"),
    [("k8s-getting-started.yml", "sloth.slok.dev/v1"), ("openslo-getting-started.yml", "openslo/v1alpha")],
)
def test_the_info_series_names_the_form_the_file_is_written_in_as_sloth_does(example, spec, project, tmp_path):
    root = project({})
    source = tools.source("sloth") / "examples" / example
    (root / "slos" / example).write_text(source.read_text())
    (root / "modelmon.toml").write_text('compatibility = "sloth"\n')
    compiled = build.compile_all(root)
    [path] = [p for p in compiled.files if p.startswith("rules/")]
    [ours] = [r["labels"] for r in rules(yaml.safe_load(compiled.files[path])) if r.get("record") == "sloth_slo_info"]
    run = subprocess.run(
        [binaries.pinned("sloth"), "generate", "-i", str(source), "-o", str(tmp_path / "sloth.yml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    documents = list(yaml.safe_load_all((tmp_path / "sloth.yml").read_text()))
    groups = [g for d in documents if d for g in (d["spec"]["groups"] if "spec" in d else d["groups"])]
    [theirs] = [r["labels"] for g in groups for r in g["rules"] if r.get("record") == "sloth_slo_info"]
    assert ours["sloth_spec"] == theirs["sloth_spec"] == spec
