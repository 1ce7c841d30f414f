"""`make up`: the whole stack from local binaries, no Docker.

The backend (gunicorn, simulated traffic on), Prometheus and Alertmanager from
Debian's packages, and Grafana when a `grafana-server` binary is installed, all
on this machine with the committed configuration. Alertmanager routes as committed
but delivers every notification to a local receiver that prints it here. Data, logs,
notifications and the generated secrets live under `.run/` (ignored by git). The
URLs are printed; `make reload` applies a changed spec; Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import signal
import sys
import threading
import urllib.request
from pathlib import Path

from stack import processes
from stack.config import REPO, local_alertmanager_config, local_prometheus_config
from stack.webhook import WebhookReceiver, alert_line

GRAFANA = shutil.which("grafana-server") or shutil.which("grafana")
# Where `make reload` finds the running stack: its project, URLs and receiver.
STATE = "stack.json"


def secret_file(run: Path, name: str) -> Path:
    """A random secret under run/secrets/, made once and kept private (only this user reads it)."""
    path = run / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def wanted_ports(args: argparse.Namespace) -> dict[str, int]:
    ports = {"backend": args.backend_port, "prometheus": args.prometheus_port, "alertmanager": args.alertmanager_port}
    if GRAFANA is not None:
        ports["grafana"] = args.grafana_port
    return ports


def taken_ports_message(ports: dict[str, int]) -> str | None:
    """What to do when ports are taken, or None when all are free.

    Checked before anything starts: a service that cannot bind its port would only
    show it in its log, and `make up` would wait for it in vain.
    """
    taken = {name: port for name, port in ports.items() if processes.port_taken(port)}
    if not taken:
        return None
    lines, make, flags = [], [], []
    for name, port in taken.items():
        other = next(p for p in range(port + 1, 65536) if p not in ports.values() and not processes.port_taken(p))
        lines.append(
            f"port {port} on 127.0.0.1 is taken: make up wanted it for {name}. See what holds it: "
            f"ss -ltnp 'sport = :{port}'"
        )
        make.append(f"{name.upper()}_PORT={other}")
        flags.append(f"--{name}-port {other}")
    lines.append(f"Stop that, or choose other ports: make up {' '.join(make)} (python -m stack.up {' '.join(flags)}).")
    lines.append("Nothing was started.")
    return "\n".join(lines)


def write_alertmanager_config(run_dir: Path, root: Path, receiver_url: str) -> Path:
    """The local Alertmanager configuration, derived from the project's committed one."""
    path = run_dir / "alertmanager.yml"
    config = local_alertmanager_config(receiver_url, root / "alertmanager" / "alertmanager.yml")
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def read_state(run_dir: Path) -> dict | None:
    """The running stack `make up` recorded under run_dir, or None when none is running."""
    path = run_dir / STATE
    return json.loads(path.read_text()) if path.exists() else None


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    if not (Path(processes.ALERTMANAGER).exists() and Path(processes.PROMETHEUS).exists()):
        print(
            "needs Debian's prometheus and prometheus-alertmanager: apt-get install -y prometheus "
            "prometheus-alertmanager",
            file=sys.stderr,
        )
        return 1
    ports = wanted_ports(args)
    taken = taken_ports_message(ports)
    if taken is not None:
        print(taken, file=sys.stderr)
        return 1
    root, run_dir = args.root.resolve(), args.run_dir.resolve()
    (run_dir / "backend-metrics").mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / "backend-metrics").glob("*"):
        stale.unlink()  # counters of a previous run would otherwise be summed in
    token = secret_file(run_dir, "metrics-token")
    api_token = secret_file(run_dir, "api-token")
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items() if name != "grafana"}
    backend, backend_env = processes.backend_command(
        args.backend_port, token, run_dir / "backend-metrics", simulate=True, api_token_file=api_token
    )
    config = local_prometheus_config(
        prometheus_port=args.prometheus_port,
        backend_port=args.backend_port,
        alertmanager_port=args.alertmanager_port,
        token_file=token,
        rules_dir=root / "rules",
    )
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    notifications = run_dir / "notifications.log"

    def show(alert: dict, receiver: str) -> None:
        line = alert_line(alert, receiver)
        print(line, flush=True)
        with notifications.open("a", encoding="utf-8") as log:
            log.write(line + "\n")

    with contextlib.ExitStack() as running:
        receiver = running.enter_context(WebhookReceiver(on_alert=show))
        alertmanager = processes.alertmanager_command(
            write_alertmanager_config(run_dir, root, receiver.url), run_dir / "alertmanager", args.alertmanager_port
        )
        running.enter_context(processes.process(backend, logs / "backend.log", env=backend_env, cwd=REPO))
        running.enter_context(processes.process(alertmanager, logs / "alertmanager.log"))
        processes.wait_until("the backend", lambda: ready(f"{urls['backend']}/healthz"), 30)
        processes.wait_until("Alertmanager", lambda: ready(f"{urls['alertmanager']}/-/ready"), 30)
        running.enter_context(processes.prometheus(config, run_dir / "prometheus", port=args.prometheus_port))
        state = {"root": str(root), "receiver": receiver.url, **urls}
        (run_dir / STATE).write_text(json.dumps(state, indent=2))
        running.callback((run_dir / STATE).unlink, missing_ok=True)
        for name, url in urls.items():
            print(f"{name:13} {url}")
        if GRAFANA is not None:
            password = secret_file(run_dir, "grafana-admin-password")
            url = start_grafana(running, run_dir, root, args, urls["prometheus"], password)
            print(f"{'grafana':13} {url} (user admin, password in {password})")
        print(f"{'metrics token':13} {token} (read by the backend and Prometheus; keep it private)")
        print(f"{'api token':13} {api_token} (for /v1/calls and the fault API: Authorization: Bearer <token>)")
        print(f"notifications of every receiver are printed here and appended to {notifications}")
        print(
            f"data and logs under {run_dir}; `make reload` applies a changed spec; Ctrl-C stops everything", flush=True
        )
        stop.wait(args.seconds)
    print("stopped", flush=True)
    return 0


def start_grafana(
    running: contextlib.ExitStack, run_dir: Path, root: Path, args: argparse.Namespace, prometheus: str, password: Path
) -> str:
    """Grafana with the project's provisioning, its dashboards path pointed at grafana/dashboards.

    The password is kept in a file across runs: Grafana reads it only when it first creates
    its database under run_dir, so a new one each run would not be the one that works.
    """
    provisioning = run_dir / "grafana" / "provisioning"
    shutil.copytree(root / "grafana" / "provisioning", provisioning, dirs_exist_ok=True)
    provider = provisioning / "dashboards" / "models-monitoring.yml"
    provider.write_text(provider.read_text().replace("/etc/grafana/dashboards", str(root / "grafana" / "dashboards")))
    env = {
        "GF_PATHS_PROVISIONING": str(provisioning),
        "GF_PATHS_DATA": str(run_dir / "grafana" / "data"),
        "GF_PATHS_LOGS": str(run_dir / "grafana" / "logs"),
        "GF_SERVER_HTTP_ADDR": "127.0.0.1",
        "GF_SERVER_HTTP_PORT": str(args.grafana_port),
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_SECURITY_ADMIN_PASSWORD": password.read_text().strip(),
        "MODELMON_PROMETHEUS_URL": prometheus,
    }
    running.enter_context(processes.process([GRAFANA, "server"], run_dir / "logs" / "grafana.log", env=env))
    return f"http://127.0.0.1:{args.grafana_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="project whose rules/, alertmanager/, grafana/ to run")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run", help="data, logs and secrets (default .run/)")
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
