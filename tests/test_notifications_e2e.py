"""Alerts proven end to end: the real backend with simulated traffic, the real
Prometheus evaluating rules compiled from a test spec with short windows, the real
Alertmanager with the generated config, and a local webhook receiver.

A full outage of one model is injected at run time: the page notification must
arrive with the model, the SLO, the runbook link and the dashboard link, and
nothing for the healthy models; when the fault is removed the resolved
notification must arrive. Every wait is bounded.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from generator import build
from stack import processes
from stack.config import local_prometheus_config
from stack.webhook import WebhookReceiver
from tests.short_windows import short_window_spec

REPO = Path(__file__).resolve().parent.parent
BROKEN = "gpt-4o-mini"


def for_broken(hook: WebhookReceiver, status: str) -> list[dict]:
    return [a for a in hook.alerts() if a["labels"].get("model") == BROKEN and a["status"] == status]


@pytest.fixture
def timings(request):
    """Seconds measured by the test, printed at the end (pytest -s shows them)."""
    found: dict[str, float] = {}
    yield found
    print("\n" + ", ".join(f"{k}: {v:.0f}s" for k, v in found.items()))


def test_outage_pages_with_links_and_recovery_resolves(project, tmp_path, timings):
    with WebhookReceiver() as hook:
        root = project({"e2e.yaml": short_window_spec("e2e", "E2eAvailabilityBudgetBurn", hook.url)})
        build.write_all(root, build.compile_all(root))
        token = tmp_path / "metrics-token"
        token.write_text("e2e-notifications-token\n")
        multiproc = tmp_path / "multiproc"
        multiproc.mkdir()
        ports = {name: processes.free_port() for name in ("backend", "prometheus", "alertmanager")}
        backend, backend_env = processes.backend_command(ports["backend"], token, multiproc, simulate=True, seed=7)
        alertmanager = processes.alertmanager_command(
            root / "alertmanager" / "alertmanager.yml", tmp_path / "alertmanager", ports["alertmanager"]
        )
        config = local_prometheus_config(
            prometheus_port=ports["prometheus"],
            backend_port=ports["backend"],
            alertmanager_port=ports["alertmanager"],
            token_file=token,
            interval="1s",
            rules_dir=root / "rules",
        )
        backend_url = f"http://127.0.0.1:{ports['backend']}"
        with (
            processes.process(backend, tmp_path / "backend.log", env=backend_env, cwd=REPO),
            processes.process(alertmanager, tmp_path / "alertmanager.log"),
        ):
            processes.wait_until("the backend", lambda: urllib.request.urlopen(f"{backend_url}/healthz"), 30)
            with processes.prometheus(config, tmp_path / "prometheus", port=ports["prometheus"]) as prom:
                processes.wait_until(
                    "a 1m ratio for every simulated model",
                    lambda: len(processes.query(prom, "slo:sli_error:ratio_rate1m")) >= 10,
                    90,
                )
                start = time.monotonic()
                processes.send_json(f"{backend_url}/v1/faults", "POST", {"kind": "outage", "model": BROKEN})
                processes.wait_until("the page notification", lambda: for_broken(hook, "firing"), 240, every=1)
                timings["fault to page"] = time.monotonic() - start

                recovery = time.monotonic()
                processes.send_json(f"{backend_url}/v1/faults/{BROKEN}", "DELETE")
                processes.wait_until("the resolved notification", lambda: for_broken(hook, "resolved"), 240, every=1)
                timings["recovery to resolved"] = time.monotonic() - recovery

    [page] = for_broken(hook, "firing")[:1]
    assert page["receiver"] == "pages"
    assert page["labels"]["alertname"] == "E2eAvailabilityBudgetBurn"
    assert page["labels"]["slo"] == "availability" and page["labels"]["severity"] == "critical"
    assert page["labels"]["long_window"] == "2m" and page["labels"]["short_window"] == "1m"
    assert page["annotations"]["runbook_url"] == "https://runbooks.example.org/modelmon/E2eAvailabilityBudgetBurn/"
    assert page["annotations"]["dashboard_url"] == f"https://grafana.example.org/d/e2e?var-model={BROKEN}"
    assert (root / "runbooks" / "E2eAvailabilityBudgetBurn.md").exists()
    assert {a["labels"]["model"] for a in hook.alerts()} == {BROKEN}, "a healthy model was notified"
