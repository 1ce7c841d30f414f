"""`make up`: the stack from local binaries starts, scrapes simulated traffic, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stack import processes

REPO = Path(__file__).resolve().parent.parent


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_stack_with_simulated_traffic_and_stops_on_ctrl_c(tmp_path):
    ports = {name: processes.free_port() for name in ("backend", "prometheus", "alertmanager", "grafana")}
    args = [sys.executable, "-m", "stack.up", "--run-dir", str(tmp_path / "run")]
    args += [f"--{name}-port={port}" for name, port in ports.items()]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Ctrl-C stops everything" in line for line in lines):
            lines.append(proc.stdout.readline())
        assert f"prometheus    http://127.0.0.1:{ports['prometheus']}\n" in lines, lines
        assert f"alertmanager  http://127.0.0.1:{ports['alertmanager']}\n" in lines
        prom = f"http://127.0.0.1:{ports['prometheus']}"

        def simulated_traffic_scraped() -> bool:
            return bool(processes.query(prom, 'sum(model_requests_total{model=~".*claude.*"}) > 0'))

        processes.wait_until("simulated traffic in Prometheus", simulated_traffic_scraped, 60)
        token = (tmp_path / "run" / "secrets" / "metrics-token").stat()
        assert token.st_mode & 0o077 == 0, "the token file must be private"

        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert out.strip().endswith("stopped")
        for name in ("backend", "prometheus", "alertmanager"):
            assert not listening(ports[name]), f"{name} still listening"
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM is handled like Ctrl-C: the children are stopped too
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
