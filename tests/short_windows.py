"""The spec of the end-to-end alerting tests: windows short enough to page within minutes.

Page when both the 2m and the 1m error ratio exceed 30 %: factor 10 % x 60m / 2m = 3,
times the 10 % budget, for 1m. Healthy simulated models fail well under 1 % of calls.
Notifications go to a local webhook, with short group timings.

The stack such a project runs on (`local_stack`) serves the doctor's tests too.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelmon import build
from stack import processes
from stack.config import local_prometheus_config

REPO = Path(__file__).resolve().parent.parent


def short_window_spec(service: str, alert: str, webhook_url: str) -> str:
    return f"""
version: modelmon/v1
service: {service}
scrape_interval: 1s
runbook_base_url: https://runbooks.example.org/modelmon
grafana_url: https://grafana.example.org
slos:
  - name: availability
    objective: 90
    period: 1h
    sli: {{availability: {{}}}}
    alerting:
      name: {alert}
      threshold_alert: {{disable: true}}
      budget_alert: {{disable: true}}
      # The burn-rate page is what these tests follow; the outage alert's 5m window would race it.
      outage_alert: {{disable: true}}
      windows:
        - {{severity: page, long: 2m, short: 1m, budget_percent: 10, for: 1m}}
notifications:
  receivers:
    - {{name: pages, webhook: {{url: "{webhook_url}/pages"}}}}
    - {{name: tickets, webhook: {{url: "{webhook_url}/tickets"}}}}
  page: pages
  ticket: tickets
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
dashboard: {{uid: {service}}}
"""


@dataclass
class LocalStack:
    """A project's processes on loopback, not yet started: the simulating backend behind a token,
    Alertmanager with a given config, and Prometheus' configuration (1s scrapes and evaluations)
    pointing at both and loading the project's rules/."""

    root: Path
    work: Path
    ports: dict[str, int]
    token: Path
    api_token: Path
    backend: list[str]
    backend_env: dict[str, str]
    alertmanager: list[str]
    prometheus_config: dict

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def fault(self, method: str, model: str | None = None, kind: str | None = None) -> None:
        """POST a fault of `kind` on `model`, or DELETE the fault of `model`, through the fault API."""
        url = f"{self.url('backend')}/v1/faults"
        if kind is not None:
            processes.send_json(url, method, {"kind": kind, "model": model}, token_file=self.api_token)
        else:
            processes.send_json(f"{url}/{model}" if model else url, method, token_file=self.api_token)

    @contextlib.contextmanager
    def backend_and_alertmanager(self) -> Iterator[None]:
        """Both running, the backend answering."""
        with (
            processes.process(self.backend, self.work / "backend.log", env=self.backend_env, cwd=REPO),
            processes.process(self.alertmanager, self.work / "alertmanager.log"),
        ):
            processes.wait_until("the backend", lambda: urllib.request.urlopen(f"{self.url('backend')}/healthz"), 30)
            yield

    def prometheus(self, **options):
        """Prometheus running `prometheus_config`; `options` go to processes.prometheus (retention)."""
        return processes.prometheus(
            self.prometheus_config, self.work / "prometheus", port=self.ports["prometheus"], **options
        )


def local_stack(
    root: Path, work: Path, name: str, alertmanager_config: Path | None = None, seed: int = 7, more_ports=()
) -> LocalStack:
    """The stack of the project at `root`, its files under `work`: the token reads `<name>-metrics-token`,
    Alertmanager runs `alertmanager_config` (default: the project's generated one), the backend simulates
    traffic from `seed`; `more_ports` names further loopback ports to reserve."""
    token = work / "metrics-token"
    token.write_text(f"{name}-metrics-token\n")
    api_token = work / "api-token"
    api_token.write_text(f"{name}-api-token\n")
    multiproc = work / "multiproc"
    multiproc.mkdir()
    ports = {port: processes.free_port() for port in ("backend", "prometheus", "alertmanager", *more_ports)}
    backend, backend_env = processes.backend_command(
        ports["backend"], token, multiproc, simulate=True, seed=seed, api_token_file=api_token
    )
    alertmanager = processes.alertmanager_command(
        alertmanager_config or root / "alertmanager" / "alertmanager.yml", work / "alertmanager", ports["alertmanager"]
    )
    config = local_prometheus_config(
        prometheus_port=ports["prometheus"],
        backend_port=ports["backend"],
        alertmanager_port=ports["alertmanager"],
        token_file=token,
        interval="1s",
        rules_dir=root / "rules",
    )
    return LocalStack(root, work, ports, token, api_token, backend, backend_env, alertmanager, config)


def short_window_stack(project, work: Path, service: str, alert: str, webhook_url: str, more_ports=()) -> LocalStack:
    """`project` is the conftest fixture; `more_ports` names further loopback ports to reserve."""
    root = project({f"{service}.yaml": short_window_spec(service, alert, webhook_url)})
    build.write_all(root, build.compile_all(root))
    return local_stack(root, work, service, more_ports=more_ports)
