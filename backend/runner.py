"""Runs the simulator in real time on a background thread, in one process only.

Under gunicorn every worker builds the app, but the traffic must be simulated once:
N simulators would multiply every rate by N. Each worker's runner tries to take an
exclusive lock on a shared file; the one that holds it simulates, the others keep
trying, so when that worker dies (and the kernel drops its lock) another takes over.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from pathlib import Path
from typing import IO

from backend.simulator import Simulator

log = logging.getLogger("modelmon.backend")


def try_to_lead(lock_file: Path) -> IO[str] | None:
    """The open lock file if this caller now holds the lock (keep it open to keep the lock), else None."""
    handle = lock_file.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class SimulatorRunner:
    """Ticks a Simulator every `interval_s` seconds of wall time until stopped."""

    def __init__(self, simulator: Simulator, interval_s: float = 1.0, lock_file: Path | None = None):
        self._simulator = simulator
        self._interval_s = interval_s
        self._lock_file = lock_file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelmon-simulator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        leadership = None
        if self._lock_file is not None:
            while (leadership := try_to_lead(self._lock_file)) is None:
                if self._stop.wait(self._interval_s):
                    return
        log.info("simulating traffic for %d models", len(self._simulator.models))
        try:
            last = time.monotonic()
            while not self._stop.wait(self._interval_s):
                now = time.monotonic()
                try:
                    self._simulator.tick(now - last)
                except Exception:
                    # A bad tick (say, an unreadable fault file) must not end the demo traffic for good.
                    log.exception("simulator tick failed; trying again next tick")
                last = now
        finally:
            if leadership is not None:
                leadership.close()
