"""`make up`: the whole stack from local binaries, no Docker.

The backend (gunicorn, simulated traffic on), Prometheus and Alertmanager from
Debian's packages, and Grafana when a `grafana-server` binary is installed, all
on this machine with the committed configuration. Data, logs and the generated
metrics token live under `.run/` (ignored by git). The URLs are printed; Ctrl-C
stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import signal
import sys
import threading
import urllib.request
from pathlib import Path

from stack import processes
from stack.config import REPO, local_prometheus_config

GRAFANA = shutil.which("grafana-server") or shutil.which("grafana")


def token_file(run: Path) -> Path:
    """The metrics token shared by the backend and Prometheus, made once and kept private."""
    path = run / "secrets" / "metrics-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    if not (Path(processes.ALERTMANAGER).exists() and Path(processes.PROMETHEUS).exists()):
        print(
            "needs Debian's prometheus and prometheus-alertmanager: apt-get install -y prometheus "
            "prometheus-alertmanager",
            file=sys.stderr,
        )
        return 1
    run_dir = args.run_dir.resolve()
    (run_dir / "backend-metrics").mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / "backend-metrics").glob("*"):
        stale.unlink()  # counters of a previous run would otherwise be summed in
    token = token_file(run_dir)
    urls = {
        "backend": f"http://127.0.0.1:{args.backend_port}",
        "prometheus": f"http://127.0.0.1:{args.prometheus_port}",
        "alertmanager": f"http://127.0.0.1:{args.alertmanager_port}",
    }
    backend, backend_env = processes.backend_command(
        args.backend_port, token, run_dir / "backend-metrics", simulate=True
    )
    alertmanager = processes.alertmanager_command(
        REPO / "alertmanager" / "alertmanager.yml", run_dir / "alertmanager", args.alertmanager_port
    )
    config = local_prometheus_config(
        prometheus_port=args.prometheus_port,
        backend_port=args.backend_port,
        alertmanager_port=args.alertmanager_port,
        token_file=token,
    )
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    with contextlib.ExitStack() as running:
        running.enter_context(processes.process(backend, logs / "backend.log", env=backend_env, cwd=REPO))
        running.enter_context(processes.process(alertmanager, logs / "alertmanager.log"))
        processes.wait_until("the backend", lambda: ready(f"{urls['backend']}/healthz"), 30)
        processes.wait_until("Alertmanager", lambda: ready(f"{urls['alertmanager']}/-/ready"), 30)
        running.enter_context(processes.prometheus(config, run_dir / "prometheus", port=args.prometheus_port))
        if GRAFANA is not None:
            urls["grafana"] = start_grafana(running, run_dir, args, urls["prometheus"])
        for name, url in urls.items():
            print(f"{name:13} {url}")
        print(f"data and logs under {run_dir}; Ctrl-C stops everything", flush=True)
        stop.wait(args.seconds)
    print("stopped", flush=True)
    return 0


def start_grafana(running: contextlib.ExitStack, run_dir: Path, args: argparse.Namespace, prometheus: str) -> str:
    """Grafana with the repository's provisioning, its dashboards path pointed at grafana/dashboards."""
    provisioning = run_dir / "grafana" / "provisioning"
    shutil.copytree(REPO / "grafana" / "provisioning", provisioning, dirs_exist_ok=True)
    provider = provisioning / "dashboards" / "models-monitoring.yml"
    provider.write_text(provider.read_text().replace("/etc/grafana/dashboards", str(REPO / "grafana" / "dashboards")))
    env = {
        "GF_PATHS_PROVISIONING": str(provisioning),
        "GF_PATHS_DATA": str(run_dir / "grafana" / "data"),
        "GF_PATHS_LOGS": str(run_dir / "grafana" / "logs"),
        "GF_SERVER_HTTP_ADDR": "127.0.0.1",
        "GF_SERVER_HTTP_PORT": str(args.grafana_port),
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_SECURITY_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "MODELMON_PROMETHEUS_URL": prometheus,
    }
    print(f"grafana admin password: {env['GF_SECURITY_ADMIN_PASSWORD']} (this run only)")
    running.enter_context(processes.process([GRAFANA, "server"], run_dir / "logs" / "grafana.log", env=env))
    return f"http://127.0.0.1:{args.grafana_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run", help="data, logs and token (default .run/)")
    parser.add_argument("--backend-port", type=int, default=8000)
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--alertmanager-port", type=int, default=9093)
    parser.add_argument("--grafana-port", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=None, help="stop by itself after this long (tests, demos)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return run(args, stop)


if __name__ == "__main__":
    sys.exit(main())
