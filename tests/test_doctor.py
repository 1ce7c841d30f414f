"""`modelmon doctor` on real stacks: a young one still filling its 5-minute tiles is
healthy (exit 0, with what is filling and when it is due), while real problems on
it still fail: a rule that cannot evaluate, metrics that never arrive, a wrong
token, notifications Alertmanager cannot deliver, a retention shorter than the SLO
period. An Alertmanager the doctor cannot reach from here (docker compose's
`alertmanager:9093`) is a check skipped, not a problem; failed notifications count
as current over the last hour when Prometheus scrapes Alertmanager; rule groups are
matched by name, whatever files Prometheus loads them from.

The young stack runs the committed rules as they are (tiles every 5m, the windows
that average them every 1m) with 1s scrapes, so the fast SLI group has data within
seconds while the tile group has, almost always, not yet evaluated since: its first
evaluation comes at a slot Prometheus picks within 5 minutes of loading the rules.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from modelmon import cli
from modelmon.doctor import alertmanager_counters, parse_time, when
from modelmon.durations import format_duration, parse_duration
from stack import processes
from stack.config import PROMETHEUS_RETENTION, local_alertmanager_config
from stack.webhook import WebhookReceiver
from tests.short_windows import local_stack

REPO = Path(__file__).resolve().parent.parent
TILES = "models-monitoring-sli-tiles"
BUDGET_PANELS = [f"{slo}: error budget remaining (30d)" for slo in ("availability", "error-rate", "latency")]
SLOS = "models-monitoring/availability, models-monitoring/error-rate, models-monitoring/latency"


def project_copy(where: Path) -> Path:
    """The committed rules and dashboard in a folder of the test's own, where files may be added."""
    for folder in ("rules", "grafana/dashboards"):
        shutil.copytree(REPO / folder, where / folder)
    return where


def doctor(root: Path, prometheus: str, capsys, *more: str) -> tuple[int, str]:
    code = cli.main(["--root", str(root), "doctor", "--prometheus", prometheus, *more])
    return code, capsys.readouterr().out


def rule_groups(prometheus: str) -> dict[str, dict]:
    return {g["name"]: g for g in processes.get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]}


def reload(prometheus: str) -> None:
    processes.send_json(f"{prometheus}/-/reload", "POST")


def reconfigure(stack, config: dict) -> None:
    """Run Prometheus of `stack` with `config` from now on: the file processes.prometheus wrote, then a reload."""
    (stack.work / "prometheus" / "prometheus.yml").write_text(json.dumps(config, indent=2))
    reload(stack.url("prometheus"))


def alertmanagers(prometheus: str) -> list[str]:
    return [a["url"] for a in processes.get_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]]


def wait_for_every_second_groups(prom: str) -> None:
    """The groups at the 1s evaluation interval each evaluate within a second of loading, in an
    order of their own (later on a busy machine): until they have, the panels reading the meta
    groups are filling, which is right, but not what a test of a later state is about."""

    def evaluated() -> bool:
        groups = [g for g in rule_groups(prom).values() if g["interval"] == 1]
        return bool(groups) and all(parse_time(g["lastEvaluation"]) for g in groups)

    processes.wait_until("the groups evaluated every second to evaluate", evaluated, 30)


@pytest.fixture(scope="module")
def young(tmp_path_factory):
    work = tmp_path_factory.mktemp("young")
    root = project_copy(work / "project")
    with WebhookReceiver() as hook:
        am_config = work / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(local_alertmanager_config(hook.url)))
        stack = local_stack(root, work, "young", am_config, seed=3)
        with stack.backend_and_alertmanager(), stack.prometheus() as prom:
            processes.wait_until(
                "a 5m error ratio for every simulated model",
                lambda: len(processes.query(prom, "slo:sli_error:ratio_rate5m")) >= 30,
                90,
            )
            wait_for_every_second_groups(prom)
            yield {"root": root, "prometheus": prom, "token": stack.token, "stack": stack}


def test_doctor_on_a_young_stack_says_what_is_filling_and_when_and_exits_0(young, capsys):
    code, out = doctor(young["root"], young["prometheus"], capsys)
    after = rule_groups(young["prometheus"])[TILES]
    assert code == 0, out
    assert "PROBLEM" not in out
    assert re.search(r"no problems found; [12] still filling", out), out
    # make up and the test stacks keep docker compose's retention, longer than the 30-day period.
    retention = format_duration(parse_duration(PROMETHEUS_RETENTION))
    assert f"ok       retention {retention} covers the 30d SLO period ({SLOS})\n" in out, out
    for title in BUDGET_PANELS:
        # Filling, or (when the tile group's slot came in the seconds before) already showing data.
        assert re.search(rf"(filling  panels .*'{re.escape(title)}'|ok       panel '{re.escape(title)}' has data)", out)
    [tiles] = [
        line for line in out.splitlines() if line.startswith(f"filling  tiles recorded every 5m (group {TILES})")
    ]
    assert re.search(r"30d by \d{4}-\d\d-\d\d \d\d:\d\d", tiles), tiles
    if parse_time(after["lastEvaluation"]) is None:
        # Not evaluated yet, before the doctor ran or since: its first tile is due within 5m of loading.
        runtime = processes.get_json(f"{young['prometheus']}/api/v1/status/runtimeinfo")["data"]
        loaded = parse_time(runtime["lastConfigTime"])
        due = loaded + after["interval"]
        # The doctor adds the date when the time is not today: the clock time must match either way.
        assert re.search(rf"first tile due by (\S+ )?{when(due, due)};", tiles), tiles
        assert f"30d by {when(due + 30 * 86400, due)}" in tiles, tiles
        assert re.search(rf"whose first sample is due by (\S+ )?{when(due, due)};", out), out


def test_doctor_skips_an_alertmanager_it_cannot_reach_as_docker_compose_names_it_and_exits_0(young, capsys):
    """Under docker compose (and Railway) Prometheus sends alerts to a host only its own network
    resolves: the committed prometheus.yml's alertmanager:9093. From the host the doctor cannot read
    that Alertmanager's metrics, which is a check not made, not a problem. An Alertmanager given
    with --alertmanager that cannot be read stays a problem."""
    committed = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    [target] = committed["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    local = young["stack"].prometheus_config
    config = copy.deepcopy(local)
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [target]
    nothing_there = f"http://127.0.0.1:{processes.free_port()}"
    prom = young["prometheus"]
    try:
        reconfigure(young["stack"], config)
        processes.wait_until(f"Prometheus to send alerts to {target}", lambda: target in str(alertmanagers(prom)), 30)
        code, out = doctor(young["root"], prom, capsys)
        given, given_out = doctor(young["root"], prom, capsys, "--alertmanager", nothing_there)
    finally:
        reconfigure(young["stack"], local)
        processes.wait_until(
            "Prometheus to send alerts to the local Alertmanager again",
            lambda: target not in str(alertmanagers(prom)),
            30,
        )
    assert code == 0, out
    assert "PROBLEM" not in out
    assert (
        f"skipped  failed notifications not checked: Alertmanager's metrics at http://{target}/metrics, the URL "
        "Prometheus sends alerts to, cannot be read from here ("
    ) in out, out
    assert "Pass --alertmanager http://localhost:9093 (its URL as seen from here)" in out
    assert re.search(r"\nno problems found; .*; 1 check skipped \(see above\)\n", out), out
    assert given == cli.EXIT_DOCTOR, given_out
    assert f"PROBLEM  cannot read Alertmanager's metrics at {nothing_there}/metrics (" in given_out


def test_doctor_on_a_young_stack_still_fails_on_a_rule_that_cannot_evaluate(young, capsys):
    broken = young["root"] / "rules" / "broken.yml"
    rule = {"record": "broken:requests:many_to_many", "expr": "model_requests_total * on() model_requests_total"}
    broken.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [rule]}]}))
    reload(young["prometheus"])
    try:

        def evaluated_with_error() -> bool:
            group = rule_groups(young["prometheus"]).get("broken")
            return group is not None and group["rules"][0]["health"] == "err"

        processes.wait_until("the broken rule to be evaluated", evaluated_with_error, 30)
        code, out = doctor(young["root"], young["prometheus"], capsys)
    finally:
        broken.unlink()
        reload(young["prometheus"])
    assert code == cli.EXIT_DOCTOR, out
    assert "PROBLEM  rule broken:requests:many_to_many in group broken fails to evaluate: " in out
    assert "many-to-many matching not allowed" in out


def test_doctor_on_a_young_stack_names_a_wrong_token(young, capsys):
    """Last of the young stack's tests: it breaks the scrape for good."""
    token = young["token"].read_text().strip()
    young["token"].write_text("not-the-token\n")

    def backend_down() -> bool:
        targets = processes.get_json(f"{young['prometheus']}/api/v1/targets")["data"]["activeTargets"]
        return any(t["labels"]["job"] == "models-backend" and t["health"] == "down" for t in targets)

    processes.wait_until("the backend target to go down", backend_down, 20)
    code, out = doctor(young["root"], young["prometheus"], capsys)
    assert code == cli.EXIT_DOCTOR, out
    assert "answers 401 Unauthorized: bearer-token mismatch" in out
    assert token not in out and "not-the-token" not in out


def test_doctor_fails_when_the_metrics_never_arrive_though_the_tile_group_has_not_run(tmp_path, capsys):
    """The SLO panels read tiles that do not exist yet, but no traffic is coming either: not a warming-up."""
    stack = local_stack(project_copy(tmp_path / "project"), tmp_path, "silent")  # only Prometheus runs
    with stack.prometheus() as prom:
        wait_for_every_second_groups(prom)
        code, out = doctor(stack.root, prom, capsys)
    assert code == cli.EXIT_DOCTOR, out
    assert "PROBLEM  metric model_requests_total is missing" in out
    for title in BUDGET_PANELS:
        assert f"PROBLEM  panel '{title}' shows No data" in out
    assert "filling  panels" not in out and "tiles recorded" not in out


@contextlib.contextmanager
def slack_failing(work: Path, scrape_alertmanager: bool):
    """Alertmanager with the committed receivers, which read secret files that do not exist here:
    one notification to Slack is sent, and fails. Prometheus (no backend) sends alerts to it, and
    scrapes it when `scrape_alertmanager`. Yields the stack and Prometheus' URL."""
    config = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    config["templates"] = [str(REPO / "alertmanager" / t) for t in config["templates"]]
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"] = "0s"  # only the wait changes: the receivers are the committed ones
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    stack = local_stack(project_copy(work / "project"), work, "notifications", work / "alertmanager.yml")
    am = stack.url("alertmanager")
    if scrape_alertmanager:
        job = {"job_name": "alertmanager", "static_configs": [{"targets": [am.removeprefix("http://")]}]}
        stack.prometheus_config["scrape_configs"].append(job)
    with (
        processes.process(stack.alertmanager, work / "alertmanager.log"),
        stack.prometheus() as prom,
    ):
        processes.wait_until("Alertmanager", lambda: urllib.request.urlopen(f"{am}/-/ready", timeout=2), 30)
        processes.wait_until("Prometheus to find Alertmanager", lambda: alertmanagers(prom), 30)
        if scrape_alertmanager:
            # A sample from before the failure, so that Prometheus sees the counter rise.
            processes.wait_until(
                "Prometheus to scrape Alertmanager",
                lambda: processes.query(prom, 'alertmanager_notifications_failed_total{integration="slack"} == 0'),
                30,
            )
        labels = {"alertname": "ModelErrorRateHigh", "service": "models-monitoring", "severity": "warning"}
        processes.send_json(f"{am}/api/v2/alerts", "POST", [{"labels": labels | {"model": "gpt-4o-mini"}}])

        def slack_failed() -> bool:
            # Summed over `reason`, by which Alertmanager 0.27 and later split failures.
            return alertmanager_counters(am).counts.get("slack", (0.0, 0.0))[1] == 1

        processes.wait_until("the Slack notification to fail", slack_failed, 60)
        yield stack, prom


def alertmanager_metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return response.read().decode()


def test_doctor_reports_notifications_alertmanager_could_not_deliver_since_it_started(tmp_path, capsys):
    """Prometheus does not scrape this Alertmanager: its own counters, since it started, are all there is."""
    with slack_failing(tmp_path, scrape_alertmanager=False) as (stack, prom):
        metrics = alertmanager_metrics(stack.url("alertmanager"))
        code, out = doctor(stack.root, prom, capsys)
    started = float(re.search(r"^process_start_time_seconds (\S+)$", metrics, re.M).group(1))
    minute = time.strftime("%H:%M", time.gmtime(started))
    assert code == cli.EXIT_DOCTOR, out
    assert re.search(
        rf"PROBLEM  Alertmanager at {re.escape(stack.url('alertmanager'))}: 1 of 1 slack notifications failed since "
        rf"Alertmanager started \((\d{{4}}-\d\d-\d\d )?{minute} UTC\); they stay counted until it restarts",
        out,
    ), out
    assert "docs/notifications.md#secrets" in out


def test_doctor_counts_failed_notifications_of_the_last_hour_when_prometheus_scrapes_alertmanager(tmp_path, capsys):
    """A failure is a problem while it is recent, then no longer: judged from Prometheus' scrapes of
    Alertmanager over --notifications-window (1h by default; 30s here, so the failure ages in seconds)."""
    recent = 'sum(increase(alertmanager_notifications_failed_total{integration="slack"}[30s]))'

    def failures() -> float:
        return float(processes.query(prom, recent)[0]["value"][1])

    with slack_failing(tmp_path, scrape_alertmanager=True) as (stack, prom):
        processes.wait_until("Prometheus to see the failure", lambda: failures() > 0, 30)
        failing_code, failing = doctor(stack.root, prom, capsys, "--notifications-window", "30s")
        processes.wait_until("the failure to be more than 30s old", lambda: failures() == 0, 90)
        _, past = doctor(stack.root, prom, capsys, "--notifications-window", "30s")
    instance = stack.url("alertmanager").removeprefix("http://")
    assert failing_code == cli.EXIT_DOCTOR, failing
    assert re.search(
        rf"PROBLEM  Alertmanager {re.escape(instance)}: \d+ of \d+ slack notifications failed in the last 30s "
        r"\(counted by Prometheus, which scrapes it\)",
        failing,
    ), failing
    assert "since Alertmanager started" not in failing
    assert f"ok       Alertmanager {instance}: no notification failed in the last 30s (" in past, past
    assert "PROBLEM  Alertmanager" not in past


def test_doctor_matches_rule_groups_by_name_whatever_files_prometheus_loads_them_from(tmp_path, capsys):
    """As under the Prometheus Operator: one file per PrometheusRule, named after its namespace, name and uid."""
    stack = local_stack(project_copy(tmp_path / "project"), tmp_path, "operator")  # only Prometheus runs
    mounted = tmp_path / "prometheus-k8s-rulefiles-0"
    mounted.mkdir()
    loaded = mounted / "monitoring-models-monitoring-2f9c1a4e.yaml"
    shutil.copy(stack.root / "rules" / "models-monitoring.yml", loaded)
    stack.prometheus_config["rule_files"] = [str(mounted / "*.yaml")]
    with stack.prometheus() as prom:
        _, same = doctor(stack.root, prom, capsys)
        rules = yaml.safe_load(loaded.read_text())
        [meta] = [g for g in rules["groups"] if g["name"] == "models-monitoring-availability-meta"]
        meta["rules"].pop()
        retired = {"record": "retired:model_requests:rate5m", "expr": "sum(rate(model_requests_total[5m]))"}
        rules["groups"].append({"name": "models-monitoring-retired", "rules": [retired]})
        loaded.write_text(yaml.safe_dump(rules, sort_keys=False))
        reload(prom)
        processes.wait_until("the changed rules", lambda: "models-monitoring-retired" in rule_groups(prom), 30)
        _, changed = doctor(stack.root, prom, capsys)
    assert f"ok       Prometheus runs the rules of {stack.root / 'rules'} as they are on disk" in same, same
    assert "not loaded" not in same
    count = len(meta["rules"])
    assert f"group models-monitoring-availability-meta: {count} rules where the file has {count + 1}" in changed
    assert f"group models-monitoring-retired is loaded (from {loaded}) but in none of the files" in changed
    assert "not loaded" not in changed


def test_doctor_fails_when_prometheus_keeps_less_than_the_slo_period(tmp_path, capsys):
    """Debian's Prometheus keeps 15 days unless told otherwise (its flags then read a retention of 0s)."""
    stack = local_stack(project_copy(tmp_path / "project"), tmp_path, "retention")  # only Prometheus runs
    with stack.prometheus(retention=None) as prom:
        code, out = doctor(stack.root, prom, capsys)
    assert code == cli.EXIT_DOCTOR, out
    assert (
        f"PROBLEM  retention 15d is shorter than the 30d SLO period ({SLOS}): the budget never covers a whole "
        "period; set --storage.tsdb.retention.time to at least 30d\n"
    ) in out, out
