"""Faults injected into the simulated traffic at run time, so alerts can be watched firing and resolving.

One fault per model at most; a new one replaces the old. A fault with a duration
clears itself when it expires, so a demo can start an outage and walk away.

With several worker processes the POST that sets a fault reaches any worker while
the simulator runs in one, so the faults then live in a JSON file that every worker
shares: written whole under a lock and swapped in with os.replace, so a reader sees
the old set or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

# A day: longer "faults" are configuration, not a demo.
MAX_DURATION_S = 86_400.0


class FaultKind(StrEnum):
    OUTAGE = "outage"  # every call of the model fails
    ERROR_BURST = "error_burst"  # a fifth of the calls fail
    LATENCY_SPIKE = "latency_spike"  # every call takes 10 s or more


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    model: str
    until: float | None  # clock time at which it clears itself; None = until cleared

    def as_json(self, now: float) -> dict[str, object]:
        remaining = None if self.until is None else max(0.0, round(self.until - now, 3))
        return {"kind": str(self.kind), "model": self.model, "remaining_s": remaining}


class InvalidFault(ValueError):
    pass


def parse_fault(body: object, models: Collection[str]) -> tuple[FaultKind, str, float | None]:
    """(kind, model, duration_s) from a decoded JSON body; InvalidFault says what is wrong."""
    if not isinstance(body, dict):
        raise InvalidFault("body: must be a JSON object with kind, model and optionally duration_s")
    fields = ("kind", "model", "duration_s")
    problems = [f"{key}: unknown field; the fields are {', '.join(fields)}" for key in sorted(set(body) - set(fields))]
    kinds = ", ".join(kind.value for kind in FaultKind)
    kind = body.get("kind")
    # isinstance first: a JSON list or object is unhashable and cannot be looked up in a set.
    if not isinstance(kind, str) or kind not in set(FaultKind):
        problems.append(f"kind: must be one of {kinds} (got {kind!r})")
    model = body.get("model")
    if not isinstance(model, str) or model not in models:
        problems.append(f"model: must be one of the simulated models: {', '.join(sorted(models))} (got {model!r})")
    duration = body.get("duration_s")
    if duration is not None and not (
        isinstance(duration, int | float)
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and 0 < duration <= MAX_DURATION_S
    ):
        limit = f"{MAX_DURATION_S:.0f}"
        problems.append(f"duration_s: must be a number of seconds above 0, at most {limit} (got {duration!r})")
    if problems:
        raise InvalidFault("; ".join(problems))
    return FaultKind(kind), model, None if duration is None else float(duration)


class FaultBoard:
    """The active faults: in memory for one process, or in `shared_file` for several."""

    def __init__(self, shared_file: Path | None = None, clock: Callable[[], float] = time.time):
        # Wall-clock time by default: a fault's expiry is written by one process and read by another.
        self._clock = clock
        self._shared_file = shared_file
        self._memory: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock()

    def active(self) -> dict[str, Fault]:
        """The faults in force now, by model."""
        now = self._clock()
        return {model: f for model, f in self._load().items() if f.until is None or f.until > now}

    def set(self, kind: FaultKind, model: str, duration_s: float | None = None) -> Fault:
        fault = Fault(kind=kind, model=model, until=None if duration_s is None else self._clock() + duration_s)
        with self._locked():
            faults = self.active()
            faults[model] = fault
            self._store(faults)
        return fault

    def clear(self, model: str | None = None) -> list[Fault]:
        """Clears the fault of `model`, or every fault when it is None; returns what was cleared."""
        with self._locked():
            faults = self.active()
            if model is None:
                cleared, faults = list(faults.values()), {}
            else:
                cleared = [faults.pop(model)] if model in faults else []
            self._store(faults)
        return cleared

    def _locked(self):
        return _FileLock(self._shared_file.with_suffix(".lock")) if self._shared_file else self._lock

    def _load(self) -> dict[str, Fault]:
        if self._shared_file is None:
            return dict(self._memory)
        try:
            raw = json.loads(self._shared_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {item["model"]: Fault(FaultKind(item["kind"]), item["model"], item["until"]) for item in raw}

    def _store(self, faults: dict[str, Fault]) -> None:
        if self._shared_file is None:
            self._memory = faults
            return
        temporary = self._shared_file.with_name(f"{self._shared_file.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps([asdict(f) for f in faults.values()]), encoding="utf-8")
        os.replace(temporary, self._shared_file)


class _FileLock:
    """An exclusive flock held for the duration of a `with` block (between processes)."""

    def __init__(self, path: Path):
        self._path = path

    def __enter__(self) -> None:
        self._file = self._path.open("a")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self._file.close()  # closing releases the lock
