"""gunicorn settings for the backend: several workers with correct metric totals.

    gunicorn -c backend/gunicorn_conf.py 'backend.app:from_env()'

Each worker is its own process with its own counters; summed naively, a scrape would
see only the worker that answered it (LiteLLM #10595, vLLM #18053). client_python's
multiprocess mode has every worker write its samples to files in
PROMETHEUS_MULTIPROC_DIR, and /metrics sums the files of all workers, dead ones
included, so a restarted worker loses no counts.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from backend.config import STATE_PREFIX

# client_python picks its value store when it is first imported, so the directory
# must be in the environment before any worker imports the app. Without one set, a
# fresh private directory keeps concurrent local runs apart.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelmon-metrics-")

bind = [f"{os.environ.get('MODELMON_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("MODELMON_WORKERS", "2"))
# Threads, not one request per process: a client that stalls mid-request holds one thread
# (for at most MODELMON_READ_TIMEOUT_S, see backend/app.py), while the others answer scrapes
# and calls. gunicorn waits for a request's first bytes outside the threads altogether.
worker_class = "gthread"
threads = int(os.environ.get("MODELMON_THREADS", "16"))
# Load the app in each worker after the fork, never in the master: the simulator
# thread and client_python's open files do not survive a fork.
preload_app = False
# Access lines hold the method, path and status, not headers, so a bearer token
# never reaches the log; nor the query string or referrer, where a token sent as
# ?token=... would be.
accesslog = "-"
access_log_format = '%(h)s - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
errorlog = "-"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), which
# two instances on a machine (tests, a local stack) would fight over; nothing here uses it.
control_socket_disable = True


def on_starting(server) -> None:
    """Wipes what a previous run left, so counters and the admitted model names start again together."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in [*directory.glob("*.db"), *directory.glob(f"{STATE_PREFIX}*")]:
        stale.unlink()


def post_fork(server, worker) -> None:
    """Sends the backend's own log lines where gunicorn writes its messages, in its format."""
    logger = logging.getLogger("modelmon")
    logger.handlers = list(server.log.error_log.handlers)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def child_exit(server, worker) -> None:
    """Drops the dead worker's live gauges; its counters and histograms stay counted."""
    # Imported here, after the environment above is set: importing client_python
    # earlier would fix it in single-process mode.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
