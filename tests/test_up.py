"""`make up`: the stack from local binaries starts, scrapes simulated traffic, shows every
notification in the terminal, says where its secrets are without printing them, refuses
taken ports at once, keeps data as long as docker compose does, and stops on Ctrl-C.

Grafana cannot be installed here: a stand-in `grafana-server` on PATH records the
password it is given and waits, so the test can check that password never reaches
the terminal.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path

import pytest
import yaml

from modelmon import build, gotemplate
from modelmon.durations import parse_duration
from stack import processes

REPO = Path(__file__).resolve().parent.parent
GRAFANA_STAND_IN = """#!/bin/sh
printf '%s' "$GF_SECURITY_ADMIN_PASSWORD" > "$GF_PATHS_PROVISIONING/../password-given"
exec sleep 600
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Output:
    """Every line the process prints, read as it comes."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, what: str, found, timeout: float) -> str:
        return processes.wait_until(what, lambda: next((line for line in self.lines if found(line)), None), timeout)

    def rest(self) -> str:
        self._thread.join(timeout=30)
        return self.text


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    work = tmp_path_factory.mktemp("up")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "grafana-server").write_text(GRAFANA_STAND_IN)
    (bin_dir / "grafana-server").chmod(0o755)
    run = work / "run"
    ports = {name: processes.free_port() for name in ("backend", "prometheus", "alertmanager", "grafana")}
    args = [sys.executable, "-m", "stack.up", "--run-dir", str(run)]
    args += [f"--{name}-port={port}" for name, port in ports.items()]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = Output(proc)
    try:
        output.wait_for("make up to be ready", lambda line: "Ctrl-C stops everything" in line, 60)
        yield {"proc": proc, "output": output, "ports": ports, "run": run}
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM is handled like Ctrl-C: the children are stopped too
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_up_runs_the_stack_with_simulated_traffic(up):
    lines, ports = up["output"].lines, up["ports"]
    assert f"prometheus    http://127.0.0.1:{ports['prometheus']}\n" in lines, lines
    assert f"alertmanager  http://127.0.0.1:{ports['alertmanager']}\n" in lines
    prom = f"http://127.0.0.1:{ports['prometheus']}"

    def simulated_traffic_scraped() -> bool:
        return bool(processes.query(prom, 'sum(model_requests_total{model=~".*claude.*"}) > 0'))

    processes.wait_until("simulated traffic in Prometheus", simulated_traffic_scraped, 60)


def test_up_says_where_the_token_and_the_grafana_password_are_and_never_prints_them(up):
    run, text = up["run"], up["output"].text
    token = run / "secrets" / "metrics-token"
    api_token = run / "secrets" / "api-token"
    password = run / "secrets" / "grafana-admin-password"
    assert f"metrics token {token} " in text
    assert f"api token     {api_token} " in text
    assert f"grafana       http://127.0.0.1:{up['ports']['grafana']} (user admin, password in {password})" in text
    given = processes.wait_until("Grafana to start", lambda: (run / "grafana" / "password-given").read_text(), 30)
    assert given == password.read_text().strip()
    assert token.read_text().strip() not in text
    assert api_token.read_text().strip() not in text
    assert given not in text
    for secret in (token, api_token, password):
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} must be private"


def test_up_guards_the_fault_api_with_the_token_it_made(up):
    faults = f"http://127.0.0.1:{up['ports']['backend']}/v1/faults"
    with pytest.raises(urllib.error.HTTPError) as refused:
        processes.send_json(faults, "GET")
    assert refused.value.code == 401
    api_token = up["run"] / "secrets" / "api-token"
    processes.send_json(faults, "POST", {"kind": "latency_spike", "model": "gpt-4o-mini"}, token_file=api_token)
    processes.send_json(f"{faults}/gpt-4o-mini", "DELETE", token_file=api_token)


def test_up_keeps_prometheus_data_as_long_as_docker_compose_and_railway_do(up):
    """Debian's Prometheus keeps 15 days by default, less than the 30-day SLO period whose budget it reads."""
    prom = f"http://127.0.0.1:{up['ports']['prometheus']}"
    stated = processes.get_json(f"{prom}/api/v1/status/runtimeinfo")["data"]["storageRetention"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["prometheus"]["command"]
    railway = (REPO / "prometheus" / "Dockerfile").read_text()
    for where, text in (("docker-compose.yml", " ".join(compose)), ("prometheus/Dockerfile", railway)):
        [retention] = re.findall(r"--storage\.tsdb\.retention\.time=(\w+)", text)
        assert parse_duration(stated) == parse_duration(retention), f"make up keeps {stated}, {where} {retention}"
    longest = max(parse_duration(slo.period) for item in build.load_all(REPO) for slo in item.spec.slos)
    assert parse_duration(stated) >= longest


def sample_notification() -> str:
    """The notification line docs/local-stack.md shows, as a person would see it."""
    text = (REPO / "docs" / "local-stack.md").read_text()
    [line] = re.findall(r"^ *(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d FIRING .*)$", text, re.M)
    return line


def test_up_prints_every_notification_in_the_terminal_and_appends_it_to_a_log(up):
    """The committed receivers (PagerDuty here) need secrets this machine lacks: make up delivers locally.

    The alert is the committed page of the 1h/5m windows for one model, with the labels and
    annotations Prometheus gives it (the annotations' templates rendered as Prometheus does),
    and the line printed is the one docs/local-stack.md shows, but for the time."""
    am = f"http://127.0.0.1:{up['ports']['alertmanager']}"
    rules = yaml.safe_load((REPO / "rules" / "models-monitoring.yml").read_text())
    [rule] = [
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("alert") == "ModelAvailabilityBudgetBurn" and r["labels"]["long_window"] == "1h"
    ]
    series = {"service": "models-monitoring", "slo": "availability", "team": "ml-platform", "model": "gpt-4o-mini"}
    labels = {"alertname": rule["alert"], **series, **rule["labels"]}
    annotations = {name: gotemplate.render(text, labels, 0.5) for name, text in rule["annotations"].items()}
    processes.send_json(f"{am}/api/v2/alerts", "POST", [{"labels": labels, "annotations": annotations}])
    # Alertmanager waits the committed group_wait (30s) before the first notification of a group.
    line = up["output"].wait_for("the notification", lambda line: "ModelAvailabilityBudgetBurn" in line, 90)
    assert (
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)\n", line).group(1) == sample_notification().split(" ", 2)[2]
    )
    assert "runbook http://localhost:8001/runbooks/ModelAvailabilityBudgetBurn/?model=gpt-4o-mini" in line
    assert line in (up["run"] / "notifications.log").read_text().splitlines(keepends=True)


def test_up_stops_everything_on_ctrl_c(up):
    """Last: it stops the stack the other tests use."""
    proc = up["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert up["output"].rest().strip().endswith("stopped")
    for name, port in up["ports"].items():
        assert not listening(port), f"{name} still listening"
    assert not (up["run"] / "stack.json").exists(), "make reload would find a stack that is gone"


def test_make_up_names_a_taken_port_and_how_to_choose_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            ["make", "up", f"PROMETHEUS_PORT={port}", f"ARGS=--run-dir={tmp_path / 'run'}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is taken: make up wanted it for prometheus" in result.stderr, result.stderr
    other = int(re.search(r"choose other ports: make up PROMETHEUS_PORT=(\d+) ", result.stderr).group(1))
    assert other != port and not processes.port_taken(other)
    assert "Nothing was started." in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists()
    print(f"\nmake up refused the taken port in {took:.1f}s")
