"""`make reload`: a changed spec reaches the running `make up` stack with one command, and
`modelmon doctor` tells when the rules on disk are not the ones Prometheus runs.

The stack runs a copy of the project (`make up --root`), so the test can change its spec.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from modelmon import cli
from stack import processes
from tests.test_up import Output
from tools import build as tools

REPO = Path(__file__).resolve().parent.parent


def availability_objective(prometheus: str) -> str:
    groups = processes.get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    [meta] = [g for g in groups if g["name"] == "models-monitoring-availability-meta"]
    return next(r["query"] for r in meta["rules"] if r["name"] == "slo:objective:ratio")


def test_make_reload_brings_a_changed_spec_into_the_running_stack(models_project, tmp_path, capsys):
    run = tmp_path / "run"
    ports = {name: processes.free_port() for name in ("backend", "prometheus", "alertmanager")}
    args = [sys.executable, "-m", "stack.up", "--root", str(models_project), "--run-dir", str(run)]
    args += [f"--{name}-port={port}" for name, port in ports.items()]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    prom, am = (f"http://127.0.0.1:{ports[name]}" for name in ("prometheus", "alertmanager"))
    doctor = ["--root", str(models_project), "doctor", "--prometheus", prom]
    try:
        Output(proc).wait_for("make up to be ready", lambda line: "Ctrl-C stops everything" in line, 60)
        assert availability_objective(prom) == "vector(0.99)"

        spec = models_project / "slos" / "models.yaml"
        text = spec.read_text()
        text = text.replace("    objective: 99\n", "    objective: 98\n", 1)
        text = text.replace("  ticket: ml-alerts-slack\n", "  ticket: ml-alerts-slack\n  group_wait: 10s\n", 1)
        spec.write_text(text)
        assert cli.main(["--root", str(models_project), "build"]) == 0
        capsys.readouterr()
        assert cli.main(doctor) == cli.EXIT_DOCTOR
        out = capsys.readouterr().out
        assert "PROBLEM  the rules Prometheus runs differ from those in " in out, out
        assert "rule slo:objective:ratio: its expression" in out
        assert "`make reload`" in out

        reload = subprocess.run(
            ["make", "reload", f"ARGS=--run-dir={run}"], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert f"prometheus    reloaded ({prom})" in reload.stdout
        assert f"alertmanager  reloaded ({am})" in reload.stdout
        assert availability_objective(prom) == "vector(0.98)"
        config = yaml.safe_load(processes.get_json(f"{am}/api/v2/status")["config"]["original"])
        [service_route] = config["route"]["routes"]
        assert service_route["group_wait"] == "10s"
        receiver = yaml.safe_load((run / "stack.json").read_text())["receiver"]
        loaded = yaml.safe_load((run / "alertmanager.yml").read_text())
        assert [r["name"] for r in config["receivers"]] == [r["name"] for r in loaded["receivers"]]
        assert all(r["webhook_configs"][0]["url"].startswith(receiver) for r in loaded["receivers"])
        # The pinned Alertmanager (0.34) shows a webhook URL as a secret; Debian's 0.25 shows it.
        pinned = tools.installed("alertmanager") == processes.ALERTMANAGER
        for r in config["receivers"]:
            assert r["webhook_configs"][0]["url"] == ("<secret>" if pinned else loaded_url(loaded, r))

        cli.main(doctor)  # a stack this young may still lack its first scrapes: only the rules are judged here
        out = capsys.readouterr().out
        assert f"ok       Prometheus runs the rules of {models_project / 'rules'} as they are on disk" in out, out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_make_reload_without_a_running_stack_says_so(tmp_path):
    result = subprocess.run(
        ["make", "reload", f"ARGS=--run-dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert f"no stack of `make up` is running with its data under {tmp_path}: start one with `make up`" in (
        result.stdout + result.stderr
    )


def loaded_url(loaded: dict, receiver: dict) -> str:
    return next(r["webhook_configs"][0]["url"] for r in loaded["receivers"] if r["name"] == receiver["name"])
