"""The four model metrics of the user's guide, plus the counter of folded model names.

Names, the label and the latency buckets come from modelmon/contract.py, which the
rules, their promtool tests and the dashboard read too, so the backend cannot drift
from what they query.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from backend.calls import Call
from backend.cap import ModelCap
from modelmon import contract

# client_python also writes a `<name>_created` sample per series in single-process
# mode (never in multiprocess mode), which would expose metric names the guide does
# not list (model_requests_created, ...). The backend owns its process, so turning
# them off here is safe and makes both modes expose the same names.
disable_created_metrics()

MODELS_FOLDED_TOTAL = "modelmon_backend_models_folded_total"


@dataclass(frozen=True)
class _Series:
    """The children of one model's series, created together."""

    requests: Counter
    errors: Counter
    latency: Histogram
    tokens: Counter


class ModelMetrics:
    """Records model calls into a registry the caller gives (tests inject their own)."""

    def __init__(self, registry: CollectorRegistry, cap: ModelCap):
        label = [contract.MODEL_LABEL]
        # client_python strips `_total` from a counter's name and adds it back to the
        # sample, so passing the contract's full name exposes exactly that name.
        self._requests = Counter(contract.REQUESTS_TOTAL, "Model calls received.", label, registry=registry)
        self._errors = Counter(contract.ERRORS_TOTAL, "Model calls that failed.", label, registry=registry)
        self._latency = Histogram(
            contract.LATENCY_MS,
            "Duration of model calls in milliseconds.",
            label,
            buckets=contract.LATENCY_BUCKETS_MS,
            registry=registry,
        )
        self._tokens = Counter(contract.TOKENS_USED_TOTAL, "Tokens used by model calls.", label, registry=registry)
        # Not labelled by the rejected name: that label would leak the very series the cap holds back.
        self._folded = Counter(
            MODELS_FOLDED_TOTAL,
            'Model calls recorded under model="other" because the cap on distinct model names was reached.',
            registry=registry,
        )
        self._cap = cap
        self._series: dict[str, _Series] = {}

    def _series_of(self, model: str) -> _Series:
        series = self._series.get(model)
        if series is None:
            # Creating the children writes every series at 0 (requests, errors, tokens,
            # each bucket, _count and _sum), so an error-rate panel shows 0% for a model
            # that has not failed yet instead of "No data".
            series = _Series(
                requests=self._requests.labels(model),
                errors=self._errors.labels(model),
                latency=self._latency.labels(model),
                tokens=self._tokens.labels(model),
            )
            self._series[model] = series
        return series

    def see(self, model: str) -> str:
        """Creates the series of `model` at 0 (or of `other` past the cap); returns the series name."""
        name = self._cap.admit(model)
        self._series_of(name)
        return name

    def record(self, call: Call) -> str:
        """Records one call; returns the model label it was recorded under."""
        name = self._cap.admit(call.model)
        if name != call.model:
            self._folded.inc()
        series = self._series_of(name)
        # Requests first: a scrape landing between the two increments then sees an
        # error ratio a hair low, never one above 100%.
        series.requests.inc()
        if call.error:
            series.errors.inc()
        series.latency.observe(call.latency_ms)
        if call.tokens:
            series.tokens.inc(call.tokens)
        return name
