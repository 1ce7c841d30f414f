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

from stack import processes
from stack.webhook import WebhookReceiver
from tests.short_windows import short_window_stack

BROKEN = "gpt-4o-mini"


def for_broken(hook: WebhookReceiver, status: str) -> list[dict]:
    return [a for a in hook.alerts() if a["labels"].get("model") == BROKEN and a["status"] == status]


def test_outage_pages_with_links_and_recovery_resolves(project, tmp_path, timings):
    with WebhookReceiver() as hook:
        stack = short_window_stack(project, tmp_path, "e2e", "E2eAvailabilityBudgetBurn", hook.url)
        root = stack.root
        with stack.backend_and_alertmanager(), stack.prometheus() as prom:
            processes.wait_until(
                "a 1m ratio for every simulated model",
                lambda: len(processes.query(prom, "slo:sli_error:ratio_rate1m")) >= 10,
                90,
            )
            start = time.monotonic()
            stack.fault("POST", BROKEN, kind="outage")
            processes.wait_until("the page notification", lambda: for_broken(hook, "firing"), 240, every=1)
            timings["fault to page"] = time.monotonic() - start

            recovery = time.monotonic()
            stack.fault("DELETE", BROKEN)
            processes.wait_until("the resolved notification", lambda: for_broken(hook, "resolved"), 240, every=1)
            timings["recovery to resolved"] = time.monotonic() - recovery

    [page] = for_broken(hook, "firing")[:1]
    assert page["receiver"] == "pages"
    assert page["labels"]["alertname"] == "E2eAvailabilityBudgetBurn"
    assert page["labels"]["slo"] == "availability" and page["labels"]["severity"] == "critical"
    assert page["labels"]["long_window"] == "2m" and page["labels"]["short_window"] == "1m"
    assert page["annotations"]["runbook_url"] == (
        f"https://runbooks.example.org/modelmon/E2eAvailabilityBudgetBurn/?model={BROKEN}"
    )
    assert page["annotations"]["dashboard_url"] == f"https://grafana.example.org/d/e2e?var-model={BROKEN}"
    assert (root / "runbooks" / "E2eAvailabilityBudgetBurn.md").exists()
    assert {a["labels"]["model"] for a in hook.alerts()} == {BROKEN}, "a healthy model was notified"
