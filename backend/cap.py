"""The cap on distinct model names: past it, new names are folded into one `other` series.

Every distinct label value is a set of series kept for the retention period, so a
caller that sends typo'd or generated model names would otherwise grow Prometheus
without bound (LiteLLM #12159). The first `limit` names win; the rest share `other`.

With several worker processes the admitted names are kept in a file that every
worker reads and appends to under an exclusive lock: a per-process cap would let
each worker admit its own `limit` names, and N workers would leak N times as many.
"""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

OTHER = "other"


class ModelCap:
    """Admits at most `limit` distinct model names, in the order they are first seen."""

    def __init__(self, limit: int, shared_file: Path | None = None):
        if limit < 1:
            raise ValueError(f"the model cap must be at least 1 (got {limit})")
        self.limit = limit
        self._shared_file = shared_file
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, model: str) -> str:
        """The series name to record `model` under: itself, or OTHER once the cap is reached.

        A caller that sends the name "other" itself shares the folded series without
        taking a place under the cap.
        """
        if model == OTHER or model in self._admitted:
            return model
        with self._lock:
            if self._shared_file is None:
                if len(self._admitted) < self.limit:
                    self._admitted.add(model)
            else:
                self._admitted = self._admit_shared(model)
        return model if model in self._admitted else OTHER

    def _admit_shared(self, model: str) -> set[str]:
        """Adds `model` to the shared file if there is room; returns every name admitted by any process."""
        with self._shared_file.open("a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed
            file.seek(0)
            names = file.read().splitlines()
            if model not in names and len(names) < self.limit:
                # Model names never hold a newline (calls.normalise_model), so one per line is safe.
                file.write(model + "\n")
                names.append(model)
        return set(names)
