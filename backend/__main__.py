"""`python -m backend`: the backend in one process, for local runs and tests (gunicorn for production).

Settings come from the environment (backend/README.md). Exit code 2 on a bad setting.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from socketserver import ThreadingMixIn
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from backend.app import from_env
from backend.auth import ConfigError, printable
from backend.config import DEFAULT_READ_TIMEOUT_S

# Connections served at once; one more is closed at once rather than given a thread.
MAX_CONNECTIONS = 64

log = logging.getLogger("modelmon.backend")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per connection, so a slow scrape does not hold up recorded calls; at most
    MAX_CONNECTIONS of them, each reading with a timeout, so stalled clients cannot pile up."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class Handler(WSGIRequestHandler):
    """wsgiref's handler with a read timeout, and access lines without the query string (a
    token sent as ?token=... stays out of the log) and with the path escaped."""

    timeout = DEFAULT_READ_TIMEOUT_S

    def log_request(self, code="-", size="-"):
        path = printable(urlsplit(self.path).path) if hasattr(self, "path") else "-"
        self.log_message('"%s %s %s" %s %s', getattr(self, "command", "-"), path, self.request_version, code, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    default_port = int(os.environ.get("PORT", "8000"))
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free one (default $PORT or 8000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = from_env()
    except ConfigError as exc:
        print(f"modelmon backend: {exc}", file=sys.stderr)
        return 2
    Handler.timeout = app.read_timeout_s
    with make_server(args.host, args.port, app, server_class=ThreadingWSGIServer, handler_class=Handler) as server:
        # The real port, so a caller that passed --port 0 can read where to connect.
        log.info("serving on http://%s:%d", args.host, server.server_port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
