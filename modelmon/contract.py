"""The metric contract of the user's guide, in one place.

The backend, the rule shortcuts, the promtool scenarios and (later) the dashboard
all read these names and bounds from here, so they cannot drift apart.
"""

from __future__ import annotations

from decimal import Decimal

MODEL_LABEL = "model"

REQUESTS_TOTAL = "model_requests_total"
ERRORS_TOTAL = "model_errors_total"
LATENCY_MS = "model_latency_ms"
LATENCY_MS_BUCKET = f"{LATENCY_MS}_bucket"
LATENCY_MS_COUNT = f"{LATENCY_MS}_count"
LATENCY_MS_SUM = f"{LATENCY_MS}_sum"
TOKENS_USED_TOTAL = "model_tokens_used_total"

# Upper bounds (milliseconds) of model_latency_ms buckets. Model calls take from
# tens of milliseconds (small, cached) to minutes (long generations), so the
# bounds are roughly logarithmic over that range. A latency SLO threshold must be
# one of these: the share of calls under any other value cannot be read from the
# histogram without interpolation, which would make the SLO lie.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
    120000.0,
    300000.0,
)


# The guide's panel thresholds (percent): error rate yellow from 5, red from 10; availability
# yellow below 99, red below 95. The shortcut SLIs' threshold alerts default to them.
ERROR_RATE_BAND = (Decimal(5), Decimal(10))  # warning above, critical above
AVAILABILITY_BAND = (Decimal(99), Decimal(95))  # warning below, critical below


def le_label(bound_ms: float) -> str:
    """The `le` value of a bucket as Prometheus 3 normalises it and client_python writes it."""
    return repr(float(bound_ms))


def nearest_bounds(value_ms: float) -> tuple[float | None, float | None]:
    """The bucket bounds just below and just above `value_ms` (None past either end)."""
    below = max((b for b in LATENCY_BUCKETS_MS if b < value_ms), default=None)
    above = min((b for b in LATENCY_BUCKETS_MS if b > value_ms), default=None)
    return below, above


# Real model names as providers and gateways spell them (provider prefixes,
# capitals, dates). Generated tests pick their models from here, so rules are
# proven on names people really send, not on "model-a".
EXAMPLE_MODELS: tuple[str, ...] = (
    "claude-3-5-sonnet-20241022",
    "gpt-4o-mini",
    "gemini-1.5-pro",
    "llama3.2",
    "mistral-large-latest",
    "anthropic/claude-3-haiku",
    "openai/gpt-4.1",
    "google/gemini-2.0-flash",
    "meta-llama/Llama-3.1-70B-Instruct",
    "mistralai/Mixtral-8x7B-Instruct",
)
