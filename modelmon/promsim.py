"""A model of the Prometheus behaviour the generated promtool tests depend on.

The generated tests state exactly when each alert starts firing and which value
each recording rule has. Those expectations come from replaying the scenario's
counters through this model: `rate()` with Prometheus 2.x extrapolation, and the
pending/firing state machine of alerting rules. promtool then checks the real
engine against them, so a wrong model shows up as a failing test, never as a
silently wrong expectation. Float operations follow the engine's order so the
values agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence

Counter = Sequence[float]  # a counter's value at every unit of time (a minute, or the scrape interval) from 0


def rate(samples: Counter, at: int, window: int, step: int = 1, unit: int = 60) -> float | None:
    """rate(counter[window]) at time `at` (times and window in units of `unit` seconds, a minute
    unless given), or None when it has no value.

    The counter is scraped every `step` units from 0. Prometheus 2.x
    selects the samples in the closed range [at - window, at] and extrapolates the
    increase towards both ends (promql/functions.go, extrapolatedRate). Samples are
    evenly spaced, so the first and last are known without scanning the window.
    """
    start = at - window
    first_t = -(-max(start, 0) // step) * step
    last_t = min(at, len(samples) - 1) // step * step
    count = (last_t - first_t) // step + 1
    if count < 2:
        return None
    first_v, last_v = samples[first_t], samples[last_t]
    result = last_v - first_v  # the scenarios' counters never reset
    duration_to_start = float((first_t - start) * unit)
    duration_to_end = float((at - last_t) * unit)
    sampled = float((last_t - first_t) * unit)
    average = sampled / float(count - 1)
    if result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average * 1.1
    extrapolate_to = sampled
    extrapolate_to += duration_to_start if duration_to_start < threshold else average / 2
    extrapolate_to += duration_to_end if duration_to_end < threshold else average / 2
    factor = extrapolate_to / sampled
    factor /= float(window * unit)
    return result * factor


def summed(values: Sequence[float | None]) -> float | None:
    """sum() over the series of one group, in the engine's order; None when none exist."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    total = present[0]
    for value in present[1:]:
        total += value
    return total


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of the Kahan-Neumaier sum the engine uses (promql/functions.go, kahanSumInc)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def sum_over_time(values: Sequence[float]) -> float | None:
    """sum_over_time() of the samples in a range, compensated as the engine sums; None when empty."""
    if not values:
        return None
    total, c = 0.0, 0.0
    for value in values:
        total, c = _kahan_inc(value, total, c)
    return total + c


def avg_over_time(values: Sequence[float]) -> float | None:
    """avg_over_time() of the samples in a range, in the engine's order and rounding (2.x:
    an incremental mean, compensated); None when the range holds no sample."""
    if not values:
        return None
    mean, count, c = 0.0, 0.0, 0.0
    for value in values:
        count += 1
        mean, c = _kahan_inc(value / count - mean / count, mean, c)
    return mean + c
