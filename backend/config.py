"""The backend's settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from backend.auth import ConfigError, load_token

DEFAULT_MODEL_CAP = 50
# Seconds a client may take to send a request body: a stalled client frees its thread after this.
DEFAULT_READ_TIMEOUT_S = 10
# Files the workers share in PROMETHEUS_MULTIPROC_DIR besides client_python's *.db
# files, all named STATE_PREFIX*. They are wiped with the metrics at start-up
# (gunicorn_conf.on_starting), so a restart resets the admitted model names and the
# faults together with the counters.
STATE_PREFIX = "modelmon-"
MODELS_FILE = f"{STATE_PREFIX}models.txt"
FAULTS_FILE = f"{STATE_PREFIX}faults.json"
SIMULATOR_LOCK_FILE = f"{STATE_PREFIX}simulator.lock"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be 1 or 0 (got {value!r})")
    return value in _TRUE


def _integer(environ: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high} (got {value})")
    return value


@dataclass(frozen=True)
class Settings:
    # repr=False: settings may be logged or shown in a traceback; tokens must not be.
    metrics_token: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    model_cap: int = DEFAULT_MODEL_CAP
    simulate: bool = False
    seed: int | None = None
    # Set: several worker processes share metrics and state through files here.
    multiproc_dir: Path | None = None
    read_timeout_s: int = DEFAULT_READ_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        multiproc = environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
        if multiproc and not Path(multiproc).is_dir():
            raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR={multiproc} is not a directory")
        return cls(
            metrics_token=load_token(environ, "MODELMON_METRICS_TOKEN"),
            api_token=load_token(environ, "MODELMON_API_TOKEN"),
            model_cap=_integer(environ, "MODELMON_MODEL_CAP", DEFAULT_MODEL_CAP, 1, 10_000),
            simulate=_flag(environ, "MODELMON_SIMULATE"),
            seed=_integer(environ, "MODELMON_SIMULATE_SEED", None, 0, 2**63 - 1),
            multiproc_dir=Path(multiproc) if multiproc else None,
            read_timeout_s=_integer(environ, "MODELMON_READ_TIMEOUT_S", DEFAULT_READ_TIMEOUT_S, 1, 300),
        )
