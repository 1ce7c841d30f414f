"""Simulated model traffic for demos and tests: the guide's five families, with faults on demand.

Each model gets Poisson arrivals at its own rate, log-normal latencies (tens of
milliseconds for small models up to tens of seconds for the rare long generation),
token counts and a baseline error ratio low enough that the shipped SLOs
(slos/models.yaml: 99% availability, 95% of calls under 5 s) stay healthy until a
fault is injected. A seed makes the traffic reproducible, and tick() advances it by
any number of seconds at once, so tests never sleep.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from backend.calls import Call
from backend.faults import Fault, FaultBoard, FaultKind
from backend.metrics import ModelMetrics
from modelmon import contract

# Spread of latencies around a model's median (log-normal shape). At 0.5 about 1% of
# calls of the slowest family exceed 5 s: a realistic tail inside the latency SLO.
LATENCY_SIGMA = 0.5
# Long generations (a whole document, a big refactor) take 10 s to a minute.
LONG_GENERATION_SHARE = 0.004
LONG_GENERATION_MS = (10_000.0, 60_000.0)
# Failed calls fail fast: a refused connection, a 429, a 5xx from the provider.
FAILURE_MEDIAN_MS = 150.0
FAILURE_SIGMA = 0.8
# An error burst fails a fifth of the calls: an error rate past the guide's red band
# (10%) and an availability (80%) under its red band (95%), so both alert.
ERROR_BURST_RATIO = 0.2
# A latency spike makes every call take 10 s to a minute, above every bucket bound
# an SLO is likely to use (the shipped one is 5 s).
LATENCY_SPIKE_MS = (10_000.0, 60_000.0)
LATENCY_FLOOR_MS = 5.0
# Output lengths vary more than latencies: a one-word answer and a page of code.
TOKENS_SIGMA = 0.7


@dataclass(frozen=True)
class ModelProfile:
    model: str
    rate_per_s: float
    median_ms: float
    mean_tokens: float
    error_ratio: float


@dataclass(frozen=True)
class _Family:
    rate_per_s: float
    median_ms: float
    mean_tokens: float
    # Hosted APIs fail about 1 call in 500; self-hosted models a little more often.
    # All stay under the 1% error budget of the shipped availability SLO.
    error_ratio: float


# Matched as substrings of the lower-cased name, so provider prefixes and capitals
# ("anthropic/claude-3-haiku", "meta-llama/Llama-3.1-70B-Instruct") find their family.
FAMILIES: dict[str, _Family] = {
    "claude": _Family(rate_per_s=2.0, median_ms=1600.0, mean_tokens=900.0, error_ratio=0.002),
    "gpt": _Family(rate_per_s=3.0, median_ms=1100.0, mean_tokens=650.0, error_ratio=0.002),
    "gemini": _Family(rate_per_s=1.5, median_ms=1300.0, mean_tokens=750.0, error_ratio=0.003),
    "llama": _Family(rate_per_s=1.0, median_ms=800.0, mean_tokens=450.0, error_ratio=0.004),
    "mistral": _Family(rate_per_s=1.0, median_ms=1000.0, mean_tokens=550.0, error_ratio=0.003),
}
# Small, cheap variants answer about three times faster with shorter outputs and
# take twice the traffic of their family's flagship.
FAST_VARIANTS = ("mini", "haiku", "flash", "llama3.2", "8x7b")


def profile_for(model: str) -> ModelProfile:
    """The traffic profile of a model, from its family and whether it is a small variant."""
    name = model.lower()
    family = next((FAMILIES[key] for key in FAMILIES if key in name), None)
    if family is None:
        raise ValueError(f"{model!r} belongs to none of the families {', '.join(FAMILIES)}")
    fast = any(marker in name for marker in FAST_VARIANTS)
    return ModelProfile(
        model=model,
        rate_per_s=family.rate_per_s * (2.0 if fast else 1.0),
        median_ms=family.median_ms * (0.35 if fast else 1.0),
        mean_tokens=family.mean_tokens * (0.6 if fast else 1.0),
        error_ratio=family.error_ratio,
    )


DEFAULT_PROFILES: tuple[ModelProfile, ...] = tuple(profile_for(model) for model in contract.EXAMPLE_MODELS)


class Simulator:
    """Generates model calls and records them into `metrics`, honouring the faults on `faults`."""

    def __init__(
        self,
        metrics: ModelMetrics,
        faults: FaultBoard,
        profiles: Iterable[ModelProfile] = DEFAULT_PROFILES,
        seed: int | None = None,
    ):
        self._metrics = metrics
        self._faults = faults
        self.profiles = tuple(profiles)
        self._rng = random.Random(seed)
        # Every simulated model is on the dashboard at 0 before its first call.
        for profile in self.profiles:
            metrics.see(profile.model)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(profile.model for profile in self.profiles)

    def tick(self, seconds: float) -> list[Call]:
        """Generates and records `seconds` of traffic; returns the calls, in order."""
        active = self._faults.active()
        calls: list[Call] = []
        remaining = seconds
        while remaining > 0:
            # Whole-second steps keep the Poisson draws small whatever the tick length.
            step = min(1.0, remaining)
            remaining -= step
            for profile in self.profiles:
                fault = active.get(profile.model)
                calls.extend(self._call(profile, fault) for _ in range(self._poisson(profile.rate_per_s * step)))
        for call in calls:
            self._metrics.record(call)
        return calls

    def _call(self, profile: ModelProfile, fault: Fault | None) -> Call:
        kind = fault.kind if fault else None
        rng = self._rng
        if kind is FaultKind.OUTAGE:
            failed = True
        elif kind is FaultKind.ERROR_BURST:
            failed = rng.random() < ERROR_BURST_RATIO
        else:
            failed = rng.random() < profile.error_ratio
        if kind is FaultKind.LATENCY_SPIKE:
            # A saturated provider answers late whether the call then succeeds or not.
            latency = self._log_uniform(*LATENCY_SPIKE_MS)
        elif failed:
            latency = self._lognormal(FAILURE_MEDIAN_MS, FAILURE_SIGMA)
        elif rng.random() < LONG_GENERATION_SHARE:
            latency = self._log_uniform(*LONG_GENERATION_MS)
        else:
            latency = self._lognormal(profile.median_ms, LATENCY_SIGMA)
        # Failed calls are not billed: no tokens.
        tokens = 0 if failed else max(1, round(rng.lognormvariate(math.log(profile.mean_tokens), TOKENS_SIGMA)))
        return Call(profile.model, latency, tokens=tokens, error=failed)

    def _lognormal(self, median: float, sigma: float) -> float:
        """A latency in ms, log-normal around `median`, never below a network round trip."""
        return max(LATENCY_FLOOR_MS, self._rng.lognormvariate(math.log(median), sigma))

    def _log_uniform(self, low: float, high: float) -> float:
        return math.exp(self._rng.uniform(math.log(low), math.log(high)))

    def _poisson(self, mean: float) -> int:
        """A Poisson draw (Knuth's method), taken in chunks because exp(-mean) underflows for large means."""
        count = 0
        while mean > 0:
            chunk = min(mean, 30.0)
            mean -= chunk
            limit = math.exp(-chunk)
            product = self._rng.random()
            while product > limit:
                count += 1
                product *= self._rng.random()
        return count
