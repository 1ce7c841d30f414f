"""`python -m backend`: the backend in one process, for local runs and tests (gunicorn for production).

Settings come from the environment (backend/README.md). Exit code 2 on a bad setting.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server

from backend.app import from_env
from backend.auth import ConfigError

log = logging.getLogger("modelmon.backend")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape does not hold up recorded calls."""

    daemon_threads = True


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
    with make_server(args.host, args.port, app, server_class=ThreadingWSGIServer) as server:
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
