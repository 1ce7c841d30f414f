"""A local Alertmanager webhook receiver: records every notification it is sent.

The tests read what it recorded; `make up` also gives it a callback that prints each alert
as one line in the terminal and appends it to a log, so a person sees every notification.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def alert_line(alert: dict, receiver: str) -> str:
    """One alert of a notification as a line a person reads: status, name, model, severity, summary, runbook."""
    labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
    head = [
        time.strftime("%Y-%m-%d %H:%M:%S"),
        alert.get("status", "?").upper(),
        labels.get("alertname", "?"),
        *([f"model={labels['model']}"] if "model" in labels else []),
        f"severity={labels.get('severity', '?')}",
        f"receiver={receiver}",
    ]
    summary = annotations.get("summary") or annotations.get("description") or "(no summary)"
    runbook = [f"runbook {annotations['runbook_url']}"] if "runbook_url" in annotations else []
    return " | ".join([" ".join(head), summary, *runbook])


class WebhookReceiver:
    """Listens on 127.0.0.1 (a free port unless `port` is given); `notifications` holds each JSON body
    in arrival order; `on_alert(alert, receiver)` is called for every alert of every notification."""

    def __init__(self, port: int = 0, on_alert: Callable[[dict, str], None] | None = None) -> None:
        self.notifications: list[dict] = []
        self.authorizations: list[str | None] = []
        received = self
        # Alertmanager may post several notifications at once: one at a time through on_alert.
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with lock:
                    received.notifications.append(body)
                    received.authorizations.append(self.headers.get("Authorization"))
                    if on_alert is not None:
                        for alert in body.get("alerts", []):
                            on_alert(alert, body.get("receiver", "?"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self) -> list[dict]:
        """Every alert of every notification, flattened, with the receiver that sent it."""
        return [a | {"receiver": n["receiver"]} for n in self.notifications for a in n["alerts"]]
