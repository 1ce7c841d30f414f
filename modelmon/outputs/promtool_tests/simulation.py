"""The model of Prometheus that the generated tests' expectations come from.

The generated tests state exactly when each alert starts firing, which labels and
annotations it carries, and which value each recording rule has. Those expectations
come from replaying the scenario's counters through this model, built from the SLO's
plan alone (never from the rules it is checking): `rate()` with Prometheus 2.x
extrapolation, the SLI's recorded ratios over short and long windows, the period's
coverage and budget, and one pending/firing state machine for every alert. promtool
then checks the real engine against them, so a wrong model shows up as a failing test,
never as a silently wrong expectation. Float operations follow the engine's order so
the values agree to the last bit.

Rates, ratios and every alert's condition and state are computed for all the evaluations of
a scenario at once (numpy: `rates`, `holds_series`, `fires_series`); the methods that take one
evaluation (`rate`, `ratio`, `condition`, `_replay`) give the exact values the tests state and
are the reference the arrays are tested against (tests/test_simulation.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from modelmon.conventions import COVERAGE_LOOKBACK, SHORT_WINDOW, TILE_WINDOW
from modelmon.durations import parse_duration
from modelmon.formatting import number
from modelmon.gotemplate import render
from modelmon.outputs.promtool_tests.traffic import REQUEST_KINDS, Traffic, group_key
from modelmon.plan import AlertPlan, BudgetAlertPlan, BurnAlertPlan, SloPlan, ThresholdAlertPlan, is_derived

# --- PromQL functions, as the engine computes them ----------------------------------

Counter = Sequence[float]  # a counter's value at every unit of time (a minute, or the scrape interval) from 0


def rate(
    samples: Counter, at: int, window: int, step: int = 1, unit: int | float = 60, first: int = 0, version: int = 2
) -> float | None:
    """rate(counter[window]) at time `at` as Prometheus `version` computes it, or None when it has
    no value. Times, the window and the step count positions of `samples`, each `unit` seconds
    apart; the counter is scraped every `step` positions from position `first`.

    Prometheus 2 selects the samples in the closed range [at - window, at], Prometheus 3 in the
    left-open (at - window, at]; both extrapolate the increase towards the range's ends
    (promql/functions.go, extrapolatedRate), 3 capping the start at the counter's zero point
    after the half-interval rule where 2 does it before. Samples are evenly spaced, so the first
    and last are known without scanning the window.
    """
    start = at - window
    lowest = max(start + 1 if version >= 3 else start, first)
    first_t = first + -(-(lowest - first) // step) * step
    last_t = first + (min(at, len(samples) - 1) - first) // step * step
    count = (last_t - first_t) // step + 1
    if count < 2:
        return None
    first_v, last_v = samples[first_t], samples[last_t]
    result = last_v - first_v  # the scenarios' counters never reset
    duration_to_start = float((first_t - start) * unit)
    duration_to_end = float((at - last_t) * unit)
    sampled = float((last_t - first_t) * unit)
    average = sampled / float(count - 1)
    threshold = average * 1.1
    to_zero = sampled * (first_v / result) if result > 0 and first_v >= 0 else None
    if version >= 3:
        if duration_to_start >= threshold:
            duration_to_start = average / 2
        if to_zero is not None and to_zero < duration_to_start:
            duration_to_start = to_zero
        if duration_to_end >= threshold:
            duration_to_end = average / 2
        factor = (sampled + duration_to_start + duration_to_end) / sampled
    else:
        if to_zero is not None and to_zero < duration_to_start:
            duration_to_start = to_zero
        extrapolate_to = sampled
        extrapolate_to += duration_to_start if duration_to_start < threshold else average / 2
        extrapolate_to += duration_to_end if duration_to_end < threshold else average / 2
        factor = extrapolate_to / sampled
    factor /= float(window * unit)
    return result * factor


def rates(
    samples: Counter, at: np.ndarray, window: int, step: int = 1, unit: float = 60, first: int = 0, version: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """rate() at every time of `at` at once: (values, whether each has one). The same operations as
    rate() above, in its order, on arrays of IEEE doubles, so each value is rate()'s to the last bit
    (tests/test_simulation.py compares them)."""
    values = samples if isinstance(samples, np.ndarray) else np.asarray(samples, dtype=np.float64)
    start = at - window
    lowest = np.maximum(start + 1 if version >= 3 else start, first)
    first_t = first + -(-(lowest - first) // step) * step
    last_t = first + (np.minimum(at, len(samples) - 1) - first) // step * step
    count = (last_t - first_t) // step + 1
    valid = count >= 2
    first_v = values[np.where(valid, first_t, 0)]
    last_v = values[np.where(valid, last_t, 0)]
    result = last_v - first_v
    duration_to_start = (first_t - start) * unit * 1.0
    duration_to_end = (at - last_t) * unit * 1.0
    sampled = np.where(valid, (last_t - first_t) * unit * 1.0, 1.0)
    average = sampled / np.where(valid, count - 1, 1).astype(np.float64)
    threshold = average * 1.1
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = sampled * (first_v / result)
    zero_point = (result > 0) & (first_v >= 0)
    if version >= 3:
        duration_to_start = np.where(duration_to_start >= threshold, average / 2, duration_to_start)
        duration_to_start = np.where(zero_point & (to_zero < duration_to_start), to_zero, duration_to_start)
        duration_to_end = np.where(duration_to_end >= threshold, average / 2, duration_to_end)
        factor = (sampled + duration_to_start + duration_to_end) / sampled
    else:
        duration_to_start = np.where(zero_point & (to_zero < duration_to_start), to_zero, duration_to_start)
        extrapolate_to = sampled + np.where(duration_to_start < threshold, duration_to_start, average / 2)
        extrapolate_to = extrapolate_to + np.where(duration_to_end < threshold, duration_to_end, average / 2)
        factor = extrapolate_to / sampled
    factor = factor / float(window * unit)
    return result * factor, valid


def summed(values: Sequence[float | None], version: int = 2) -> float | None:
    """sum() over the series of one group, in the engine's order (Prometheus 3 compensates the
    sum as sum_over_time does, 2 adds plainly); None when none exist."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    total, c = present[0], 0.0
    for value in present[1:]:
        if version >= 3:
            total, c = _kahan_inc(value, total, c)
        else:
            total += value
    return total + c


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


def avg_over_time(values: Sequence[float], version: int = 2) -> float | None:
    """avg_over_time() of the samples in a range, in the engine's order and rounding, None when the
    range holds no sample. Prometheus 2 takes an incremental mean, compensated; 3 divides the
    compensated sum by the count (it falls back to the incremental mean only on overflow, which
    error ratios and call rates never reach)."""
    if not values:
        return None
    if version >= 3:
        total, c = values[0], 0.0
        for value in values[1:]:
            total, c = _kahan_inc(value, total, c)
        return total / len(values) + c / len(values)
    mean, count, c = 0.0, 0.0, 0.0
    for value in values:
        count += 1
        mean, c = _kahan_inc(value / count - mean / count, mean, c)
    return mean + c


# --- One SLO's rules under one scenario's traffic ------------------------------------


class Simulation:
    """The expected behaviour of one SLO's rules under one scenario's traffic.

    Windows under 6h are rates of the raw counters; longer ones average the 5m rates
    recorded at every evaluation before them (promtool evaluates every group at the
    test's interval). Long-window averages are first taken from running sums, which
    is fast, and computed exactly as the engine does wherever the exact bits matter:
    near a threshold, and for every value a test states.

    `version` is the Prometheus major version whose engine is modelled (2 or 3: closed or
    left-open ranges, and their sums and means). With `offset` the counters are scraped half
    a unit after each step instead of on it: every window edge falls between two samples, so
    both versions select the same samples of them (a test whose traffic changes needs that
    to state one expectation for both).
    """

    def __init__(
        self,
        plan: SloPlan,
        traffic: list[Traffic],
        length: int,
        step: int = 1,
        every: int = 1,
        unit: int = 60,
        version: int = 2,
        offset: bool = False,
    ):
        self.plan = plan
        self.length = length
        self.unit = unit  # seconds in one unit of time: every time below counts them (a minute, or 15s)
        self.step = step  # units between two samples of the input series
        self.every = every  # units between two rule evaluations
        self.version = version
        self.offset = offset
        # The counters at every position of the input series: units, or half units when offset.
        self.per_unit = 2 if offset else 1
        self.traffic = traffic
        # Everything computed from the numbers alone is kept in a core that every simulation of
        # the same shape shares (see _Core): SLOs that differ only in names and labels are
        # computed once. What names and labels go into (sample_labels, alerts) is this SLO's own.
        core = _core(plan, traffic, length, step, every, unit, version, offset)
        self.counters, self.fast, self.groups = core.counters, core.fast, core.groups
        self._ratios, self._tiles, self._running = core.ratios, core.tiles, core.running
        self._clock = core.clock
        self._conditions, self._firing, self._encoded = core.conditions, core.firing, core.encoded
        self._rate_sums, self._arrays, self._series_cache = core.rate_sums, core.arrays, core.series

    def units(self, seconds: int) -> int:
        return seconds // self.unit

    @property
    def input_interval(self) -> float:
        """Seconds between two values of the input series (promtool's `interval`)."""
        return self.unit / 2 if self.offset else self.unit * self.step

    def input_values(self, counter: Counter) -> list[float | None]:
        """A counter as the input series gives it: its scraped samples; when offset, a value at
        every half unit, None where no scrape is."""
        if not self.offset:
            return list(counter[:: self.step])
        step = 2 * self.step
        return [v if i % step == 1 else None for i, v in enumerate(counter)]

    def encoded_input(self, traffic: int, counter: int, encode) -> object:
        """`encode` (the writer's notation) of input_values of counter `counter` (0: total, 1: errors,
        2: the latency bucket) of traffic `traffic`: once per shape."""
        if (traffic, counter) not in self._encoded:
            values = self.fast[traffic] if counter == 2 else self.counters[traffic][counter]
            self._encoded[traffic, counter] = encode(self.input_values(values))
        return self._encoded[traffic, counter]

    def encoded_series(self, role: str, window: int, key: tuple, encode) -> object:
        """`encode` of what a signal records over `window` (role "ratio": a raw SLI's ratio) for group
        `key` at every evaluation, None where it records nothing: the recorded inputs of the tests of
        events and raw SLIs, encoded once per shape."""
        cache_key = (role, window, key)
        if cache_key not in self._encoded:
            values = self._raw_ratio_series(window, key) if role == "ratio" else self._rates(role, window, key)
            self._encoded[cache_key] = encode([None if v != v else v for v in values.tolist()])  # NaN: none
        return self._encoded[cache_key]

    def sample_labels(self, key: tuple) -> dict[str, str]:
        return {**dict(zip(self.plan.group_by, key, strict=True)), **self.plan.labels}

    # --- rates of the raw counters ---------------------------------------------------

    def rate(self, role: str, window: int, minute: int, key: tuple) -> float | None:
        """The recorded rate of a signal (total, bad or good) of group `key` over `window` minutes."""
        found = self._rate_sums.get((role, window, key))
        if found is None:
            found = self._rate_series(role, window, key)
        value = found[minute // self.every] if minute % self.every == 0 else self._rate_at(role, window, minute, key)
        if role == "bad" and value is None and self.plan.kind in REQUEST_KINDS:
            total = self.rate("total", window, minute, key)
            value = None if total is None else 0.0 * total  # `or on (...) 0 * requests`
        return value

    def _series(self, role: str, key: tuple) -> list[Counter]:
        members = self.groups[key]
        if role == "total":
            return [self.counters[i][0] for i in members]
        if role == "good":
            return [self.fast[i] for i in members]
        return [self.counters[i][1] for i in members if self.traffic[i].error_series]

    def _rate_at(self, role: str, window: int, minute: int, key: tuple) -> float | None:
        """The sum of the group's rates at a time between two evaluations (no scenario asks for one)."""
        n = self.per_unit
        first, step, unit = n // 2, self.step * n, self.unit / n
        series = self._series(role, key)
        return summed([rate(c, minute * n, window * n, step, unit, first, self.version) for c in series], self.version)

    def _rate_series(self, role: str, window: int, key: tuple) -> list[float | None]:
        """The sum of the group's rates over `window` at every evaluation of the scenario, as the
        engine sums them (in the series' order; Prometheus 3 compensated): once per shape, role,
        window and group."""
        n = self.per_unit
        first, step, unit = n // 2, self.step * n, self.unit / n
        at = np.arange(0, self.length + 1, self.every) * n
        found = [
            rates(self._array(c), at, window * n, step, unit, first, self.version) for c in self._series(role, key)
        ]
        if not found:
            sums: list[float | None] = [None] * len(at)
        else:
            # Every series of a group is sampled at the same times: they have values at the same minutes.
            total, valid = found[0]
            c = np.zeros_like(total)
            for value, _ in found[1:]:
                if self.version >= 3:
                    t = total + value
                    c = c + np.where(np.abs(total) >= np.abs(value), (total - t) + value, (value - t) + total)
                    total = t
                else:
                    total = total + value
            sums = (total + c).tolist()
            for i in np.flatnonzero(~valid).tolist():
                sums[i] = None
        self._rate_sums[role, window, key] = sums
        return sums

    def _array(self, counter: Counter) -> np.ndarray:
        """A counter as an array, made once per counter of the shared core."""
        found = self._arrays.get(id(counter))
        if found is None or found[0] is not counter:
            found = self._arrays[id(counter)] = (counter, np.asarray(counter, dtype=np.float64))
        return found[1]

    def raw_ratio(self, window: int, minute: int, key: tuple) -> float | None:
        total = self.rate("total", window, minute, key)
        if total is None or not total > 0:
            return None
        if self.plan.kind == "latency":
            return (total - self.rate("good", window, minute, key)) / total
        errors = self.rate("bad", window, minute, key)
        return None if errors is None else errors / total

    # --- long windows: averages of the 5m tiles ----------------------------------------

    def tiles(self, role: str, key: tuple) -> list[float | None]:
        """A signal's 5m tile (role "ratio": a raw SLI's 5m ratio) at every evaluation."""
        if (role, key) not in self._tiles:
            tile = self.units(parse_duration(TILE_WINDOW))
            values = self._raw_ratio_series(tile, key) if role == "ratio" else self._rates(role, tile, key)
            self._tiles[role, key] = [None if v != v else v for v in values.tolist()]  # NaN: none
        return self._tiles[role, key]

    def _span(self, window: int, minute: int) -> tuple[int, int]:
        """Evaluations in the range [minute - window, minute] (Prometheus 2; 3 leaves out its start),
        as indices."""
        start = minute - window
        first = start // self.every + 1 if self.version >= 3 and start >= 0 else -(-max(0, start) // self.every)
        return first, minute // self.every + 1

    def over_time(self, role: str, window: int, minute: int, key: tuple, exact: bool, total: bool = False):
        """avg_over_time(<tile>[window]) at `minute` (sum_over_time when `total`); None without tiles."""
        lo, hi = self._span(window, minute)
        if exact:
            present = [v for v in self.tiles(role, key)[lo:hi] if v is not None]
            return sum_over_time(present) if total else avg_over_time(present, self.version)
        sums, counts = self._running_sums(role, key)
        count = counts[hi] - counts[lo]
        if not count:
            return None
        return sums[hi] - sums[lo] if total else (sums[hi] - sums[lo]) / count

    def _running_sums(self, role: str, key: tuple) -> tuple[list[float], list[int]]:
        """The tiles' running sum and count up to each evaluation, added in order as the engine would."""
        if (role, key) not in self._running:
            sums, counts = [0.0], [0]
            for value in self.tiles(role, key):
                sums.append(sums[-1] + (value or 0.0))
                counts.append(counts[-1] + (value is not None))
            self._running[role, key] = (sums, counts)
        return self._running[role, key]

    def long_ratio(self, window: int, minute: int, key: tuple, exact: bool) -> float | None:
        if self.plan.total is None:
            return self.over_time("ratio", window, minute, key, exact)
        summed = not self.plan.total.shared  # an events SLI divides the sums of its own tiles
        total = self.over_time("total", window, minute, key, exact, summed)
        if total is None or not total > 0:
            return None
        if self.plan.kind == "latency":
            return (total - self.over_time("good", window, minute, key, exact)) / total
        bad = self.over_time("bad", window, minute, key, exact, summed)
        return None if bad is None else bad / total

    def ratio(self, window_min: int, minute: int, key: tuple, exact: bool = True) -> float | None:
        """slo:sli_error:ratio_rate<window> of group `key` at `minute`; long windows approximate unless `exact`."""
        derived = is_derived(window_min * self.unit)
        cache_key = (window_min, minute, key, exact or not derived)
        if cache_key not in self._ratios:
            if derived:
                self._ratios[cache_key] = self.long_ratio(window_min, minute, key, exact)
            else:
                self._ratios[cache_key] = self.raw_ratio(window_min, minute, key)
        return self._ratios[cache_key]

    def above(self, window_min: int, minute: int, key: tuple, threshold: float) -> tuple[bool, float | None]:
        """ratio > threshold, decided on the exact value whenever the fast one is too close to call."""
        value = self.ratio(window_min, minute, key, exact=False)
        # Error ratios lie in [0, 1]; running sums stay within about 1e-13 of the engine's value.
        if value is not None and abs(value - threshold) <= 1e-9:
            value = self.ratio(window_min, minute, key)
        return value is not None and value > threshold, value

    def period_ratio(self, minute: int, key: tuple) -> float | None:
        return self.ratio(self.units(self.plan.period_s), minute, key)

    def coverage(self, at: int, key: tuple) -> float | None:
        """slo:period_coverage:ratio at `at`: the time since the period's oldest tile plus the
        5 minutes it stands for, over the period, at most 1; None before the first tile."""
        lo, hi = self._span(self.units(self.plan.period_s), at)
        first = self._next_tile(key)[lo]
        if first >= hi:
            return None
        since = float(at * self.unit) - float(first * self.every * self.unit)
        return min((since + parse_duration(TILE_WINDOW)) / self.plan.period_s, 1.0)

    def _next_tile(self, key: tuple) -> list[int]:
        """For every evaluation: the index of the first evaluation from it on that recorded the
        tile the coverage clocks (a raw SLI's ratio, else the total)."""
        clock = "ratio" if self.plan.total is None else "total"
        if (clock, key) not in self._clock:
            tiles = self.tiles(clock, key)
            following = [len(tiles)] * (len(tiles) + 1)
            for i in range(len(tiles) - 1, -1, -1):
                following[i] = i if tiles[i] is not None else following[i + 1]
            self._clock[clock, key] = following
        return self._clock[clock, key]

    def recent_coverage(self, at: int, key: tuple) -> float | None:
        """last_over_time(slo:period_coverage:ratio[15m]): the newest coverage recorded in the lookback."""
        oldest = at - self.units(parse_duration(COVERAGE_LOOKBACK))
        for t in range(at // self.every * self.every, max(oldest, 0) - 1, -self.every):
            inside = t > oldest if self.version >= 3 else t >= oldest  # 3: left-open, as every range
            if inside and (value := self.coverage(t, key)) is not None:
                return value
        return None

    def budget_spent(self, ratio: float, at: int, key: tuple) -> float | None:
        """The share of the period's budget the errors so far use (what budget remaining subtracts)."""
        if self.plan.coverage_clock is None:
            return ratio / float(number(self.plan.budget))
        coverage = self.recent_coverage(at, key)
        return None if coverage is None else ratio * coverage / float(number(self.plan.budget))

    def condition(self, alert: AlertPlan, minute: int, key: tuple, exact: bool = False) -> tuple[bool, float]:
        """Whether the alert's expression holds, and its value (exact when asked for)."""
        cache_key = (alert_shape(alert), minute, key, exact)
        if cache_key not in self._conditions:
            self._conditions[cache_key] = self._condition(alert, minute, key, exact)
        return self._conditions[cache_key]

    def _condition(self, alert: AlertPlan, minute: int, key: tuple, exact: bool) -> tuple[bool, float]:
        if isinstance(alert, BudgetAlertPlan):
            period = self.units(self.plan.period_s)
            ratio = self.ratio(period, minute, key, exact=exact)
            spent = None if ratio is None else self.budget_spent(ratio, minute, key)
            if spent is not None and not exact and abs(spent - 1) <= 1e-9:
                # Too close to call on the running sums: decide on the engine's exact value.
                spent = self.budget_spent(self.ratio(period, minute, key), minute, key)
            if spent is None:
                return False, 0.0
            remaining = 1 - spent
            return remaining <= 0, remaining
        if isinstance(alert, BurnAlertPlan):
            threshold = float(number(alert.threshold))
            long_holds, long = self.above(self.units(alert.long_s), minute, key, threshold)
            short_holds, _ = self.above(self.units(alert.short_s), minute, key, threshold)
            if exact and long is not None:
                long = self.ratio(self.units(alert.long_s), minute, key)
            return long_holds and short_holds, long if long is not None else 0.0
        ratio = self.ratio(self.units(parse_duration(SHORT_WINDOW)), minute, key)
        if ratio is None:
            return False, 0.0
        if alert.below:
            value = 1 - ratio
            return value < float(number(alert.ratio)), value
        return ratio > float(number(alert.ratio)), ratio

    # --- alerts: one pending/firing state machine -------------------------------------

    def _replay(self, alert: AlertPlan, key: tuple, start: int, end: int) -> Iterator[tuple[int, bool]]:
        """The alert's state machine for group `key`, inactive at `start` and stepped through every
        evaluation to `end`, one condition at a time: each evaluation's time and whether the alert
        fires there (the reference fires_series must match; tests/test_simulation.py)."""
        state = AlertState(self.units(alert.for_s))
        for at in range(start, end + 1, self.every):
            yield at, state.evaluate(at, self.condition(alert, at, key)[0])

    def fires_series(self, alert: AlertPlan, key: tuple) -> np.ndarray:
        """Whether the alert fires for group `key` at each evaluation of the scenario (by index): the
        state machine of AlertState over holds_series at once. Firing means holding at every
        evaluation since one at least `for` ago, so it fires where its run of holding evaluations
        began `for` or more before."""
        cache_key = (alert_shape(alert), key)
        found = self._firing.get(cache_key)
        if found is None:
            holds = self.holds_series(alert, key)
            index = np.arange(len(holds))
            began = np.maximum.accumulate(np.where(holds & ~np.concatenate(([False], holds[:-1])), index, 0))
            found = self._firing[cache_key] = holds & ((index - began) * self.every >= self.units(alert.for_s))
        return found

    def firing(self, alert: AlertPlan, at: int, key: tuple) -> bool:
        """Whether the alert fires for group `key` at the evaluation at `at`."""
        if at % self.every:
            raise ValueError(f"no evaluation at {at}: rules are evaluated every {self.every}")
        return bool(self.fires_series(alert, key)[at // self.every])

    def first_firing(self, alert: AlertPlan, key: tuple) -> int | None:
        """The first evaluation at which the alert fires for group `key`, None within the scenario."""
        fires = self.fires_series(alert, key)
        return int(np.argmax(fires)) * self.every if fires.any() else None

    # --- every evaluation at once: what the state machine reads ------------------------

    def holds_series(self, alert: AlertPlan, key: tuple) -> np.ndarray:
        """condition(alert, at, key)[0] at every evaluation of the scenario, as an array; the burn
        and threshold alerts from their ratios' arrays, a budget alert one evaluation at a time."""
        at = np.arange(0, self.length + 1, self.every)
        if isinstance(alert, BurnAlertPlan):
            threshold = float(number(alert.threshold))
            return self._above(self.units(alert.long_s), key, threshold) & self._above(
                self.units(alert.short_s), key, threshold
            )
        if isinstance(alert, ThresholdAlertPlan):
            ratio = self.ratio_series(self.units(parse_duration(SHORT_WINDOW)), key)
            with np.errstate(invalid="ignore"):
                if alert.below:
                    return (1 - ratio) < float(number(alert.ratio))
                return ratio > float(number(alert.ratio))
        return self._budget_holds(alert, key, at)

    def _budget_holds(self, alert: AlertPlan, key: tuple, at: np.ndarray) -> np.ndarray:
        """A budget alert's condition at every evaluation: the budget remaining at most 0."""
        period = self.units(self.plan.period_s)
        spent = self._spent_series(self.ratio_series(period, key), key)
        with np.errstate(invalid="ignore"):
            holds = (1 - spent) <= 0
        # Too close to call on the running sums: condition() decides those on the exact value.
        for i in np.flatnonzero(np.abs(spent - 1) <= 1e-9).tolist():
            holds[i] = self.condition(alert, int(at[i]), key)[0]
        return holds

    def _spent_series(self, ratio: np.ndarray, key: tuple) -> np.ndarray:
        """budget_spent(ratio, at, key) at every evaluation, NaN where it has none."""
        budget = float(number(self.plan.budget))
        if self.plan.coverage_clock is None:
            return ratio / budget
        return ratio * self._recent_coverage_series(key) / budget

    def _coverage_series(self, key: tuple) -> np.ndarray:
        """coverage(at, key) at every evaluation, NaN before the first tile."""
        at = np.arange(0, self.length + 1, self.every)
        following = np.asarray(self._next_tile(key))
        lo, hi = self._spans(self.units(self.plan.period_s))
        first = following[lo]
        since = (at * self.unit).astype(np.float64) - (first * self.every * self.unit).astype(np.float64)
        coverage = np.minimum((since + parse_duration(TILE_WINDOW)) / self.plan.period_s, 1.0)
        return np.where(first < hi, coverage, np.nan)

    def _spans(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        """_span(window, at) at every evaluation: the indices each range starts and ends at."""
        at = np.arange(0, self.length + 1, self.every)
        start = at - window
        ceil = -(-np.maximum(0, start) // self.every)
        return np.where(start >= 0, start // self.every + 1, ceil) if self.version >= 3 else ceil, at // self.every + 1

    def _recent_coverage_series(self, key: tuple) -> np.ndarray:
        """recent_coverage(at, key) at every evaluation: the newest coverage in the lookback."""
        if ("coverage", key) in self._series_cache:
            return self._series_cache["coverage", key]
        coverage = self._coverage_series(key)
        found = np.full(len(coverage), np.nan)
        lookback = self.units(parse_duration(COVERAGE_LOOKBACK))
        index = np.arange(len(coverage))
        for back in range(lookback // self.every + 1):  # the newest evaluation first, as recent_coverage
            t = (index - back) * self.every
            inside = (t > index * self.every - lookback) if self.version >= 3 else (t >= index * self.every - lookback)
            inside &= t >= 0
            candidate = np.where(inside, coverage[np.maximum(index - back, 0)], np.nan)
            found = np.where(np.isnan(found), candidate, found)
        self._series_cache["coverage", key] = found
        return found

    def _above(self, window_min: int, key: tuple, threshold: float) -> np.ndarray:
        """above(window_min, at, key, threshold)[0] at every evaluation."""
        value = self.ratio_series(window_min, key).copy()
        # Too close to call on the running sums: decided on the exact value, as above() does.
        for i in np.flatnonzero(np.abs(value - threshold) <= 1e-9).tolist():
            exact = self.ratio(window_min, i * self.every, key)
            value[i] = np.nan if exact is None else exact
        with np.errstate(invalid="ignore"):
            return value > threshold

    def ratio_series(self, window_min: int, key: tuple) -> np.ndarray:
        """ratio(window_min, at, key, exact=False) at every evaluation, NaN where it has none."""
        cache_key = ("ratio", window_min, key)
        found = self._series_cache.get(cache_key)
        if found is None:
            if is_derived(window_min * self.unit):
                found = self._long_ratio_series(window_min, key)
            else:
                found = self._raw_ratio_series(window_min, key)
            self._series_cache[cache_key] = found
        return found

    def _rates(self, role: str, window: int, key: tuple) -> np.ndarray:
        """rate(role, window, at, key) at every evaluation, NaN where it has none."""
        found = self._rate_sums.get((role, window, key))
        if found is None:
            found = self._rate_series(role, window, key)
        values = np.array([np.nan if v is None else v for v in found], dtype=np.float64)
        if role == "bad" and self.plan.kind in REQUEST_KINDS:  # `or on (...) 0 * requests`
            total = self._rates("total", window, key)
            values = np.where(np.isnan(values), 0.0 * total, values)
        return values

    def _raw_ratio_series(self, window: int, key: tuple) -> np.ndarray:
        total = self._rates("total", window, key)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.plan.kind == "latency":
                ratio = (total - self._rates("good", window, key)) / total
            else:
                ratio = self._rates("bad", window, key) / total
            return np.where(total > 0, ratio, np.nan)

    def _over_time_series(self, role: str, window: int, key: tuple, total: bool = False) -> np.ndarray:
        """over_time(role, window, at, key, exact=False, total) at every evaluation, NaN for None."""
        sums, counts = (np.asarray(a) for a in self._running_sums(role, key))
        lo, hi = self._spans(window)
        count = counts[hi] - counts[lo]
        summed = sums[hi] - sums[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, summed if total else summed / count, np.nan)

    def _long_ratio_series(self, window: int, key: tuple) -> np.ndarray:
        if self.plan.total is None:
            return self._over_time_series("ratio", window, key)
        summed = not self.plan.total.shared  # an events SLI divides the sums of its own tiles
        total = self._over_time_series("total", window, key, summed)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.plan.kind == "latency":
                ratio = (total - self._over_time_series("good", window, key)) / total
            else:
                ratio = self._over_time_series("bad", window, key, summed) / total
            return np.where(total > 0, ratio, np.nan)

    def alerts(self, name: str, at: int) -> list[FiringAlert]:
        """The alerts named `name` firing at `at`, as Prometheus shows them: the series' labels
        with the alert's own on top, annotations expanded for the series' labels and value."""
        found = []
        for alert in self.plan.alerts():
            if alert.name != name:
                continue
            for key in self.groups:
                if not self.firing(alert, at, key):
                    continue
                sample = self.sample_labels(key)
                value = self.condition(alert, at, key, exact=True)[1]
                # Prometheus expands the rule's labels and annotations with the series' own labels.
                labels = {k: render(v, sample, value) for k, v in alert.labels.items()}
                annotations = {k: render(v, sample, value) for k, v in alert.annotations.items()}
                found.append(FiringAlert({**sample, **labels}, annotations))
        return sorted(found, key=lambda a: sorted(a.labels.items()))


# --- Shapes: what the numbers depend on --------------------------------------------------


def plan_shape(plan: SloPlan) -> tuple:
    """Every part of a plan the simulation's numbers read (the methods above read no other):
    two plans of one shape give the same rates, ratios and firing times under the same traffic."""
    shared = None if plan.total is None else plan.total.shared
    return (
        plan.kind,
        plan.group_by,
        plan.total is None,
        shared,
        plan.period_s,
        plan.coverage_clock is None,
        plan.budget,
    )


def alert_shape(alert: AlertPlan) -> tuple:
    """Every part of an alert its condition and state machine read: not its name or labels."""
    if isinstance(alert, BurnAlertPlan):
        return ("burn", alert.for_s, alert.long_s, alert.short_s, alert.threshold)
    if isinstance(alert, BudgetAlertPlan):
        return ("budget", alert.for_s)
    return ("threshold", alert.for_s, alert.ratio, alert.below)


def traffic_shape(traffic: list[Traffic]) -> tuple:
    return tuple((tuple(sorted(t.labels.items())), tuple(t.phases), t.error_series) for t in traffic)


@dataclass
class _Core:
    """The counters, groups and caches of one shape of simulation (plan shape, traffic, times and
    engine version), shared by every Simulation of that shape."""

    counters: list[tuple[list[float], list[float]]]
    fast: list[list[float]]
    groups: dict[tuple, list[int]]
    ratios: dict[tuple, float | None] = field(default_factory=dict)
    tiles: dict[tuple, list[float | None]] = field(default_factory=dict)
    running: dict[tuple, tuple[list[float], list[int]]] = field(default_factory=dict)
    clock: dict[tuple, list[int]] = field(default_factory=dict)
    conditions: dict[tuple, tuple[bool, float]] = field(default_factory=dict)
    firing: dict[tuple, np.ndarray] = field(default_factory=dict)  # (alert shape, group) -> by evaluation
    series: dict[tuple, np.ndarray] = field(default_factory=dict)  # ratios at every evaluation
    encoded: dict[tuple, object] = field(default_factory=dict)  # (traffic, counter) or (role, window, group) -> text
    rate_sums: dict[tuple, list[float | None]] = field(default_factory=dict)  # (role, window, group) -> by evaluation
    arrays: dict[int, tuple[list[float], np.ndarray]] = field(default_factory=dict)  # id(counter) -> it, as an array

    @property
    def size(self) -> int:
        """Counter values held: what the memory of a core grows with."""
        return sum(len(total) + len(errors) for total, errors in self.counters)


# The cores last used, up to this many counter values in all (with their caches, about 100 MB):
# the test writer takes the SLOs of one shape one after another, and one SLO's scenarios need
# about 30 cores, most of them small; a 30-day period's counters are 86,400 values, a year's 1M.
CORE_VALUES_KEPT = 3_000_000
_CORES: OrderedDict[tuple, _Core] = OrderedDict()
_CORES_SIZE = 0  # the counter values _CORES holds


def clear_cores() -> None:
    """Forget every kept core (tests compare the shared path with the straightforward one)."""
    global _CORES_SIZE
    _CORES.clear()
    _CORES_SIZE = 0


# Off: every simulation computes its own numbers (the straightforward path the shared one must
# match byte for byte; tests/test_promtool_scale.py compares them).
SHARING = True


def _core(
    plan: SloPlan, traffic: list[Traffic], length: int, step: int, every: int, unit: int, version: int, offset: bool
) -> _Core:
    key = (plan_shape(plan), traffic_shape(traffic), length, step, every, unit, version, offset)
    if SHARING and key in _CORES:
        _CORES.move_to_end(key)
        return _CORES[key]
    per_unit = 2 if offset else 1
    counters = [t.counters(length, unit, per_unit) for t in traffic]
    groups: dict[tuple, list[int]] = {}
    for i in sorted(range(len(traffic)), key=lambda i: sorted(traffic[i].labels.items())):
        groups.setdefault(group_key(plan, traffic[i].labels), []).append(i)
    core = _Core(counters, [_fast(c) for c in counters] if plan.kind == "latency" else [], groups)
    if SHARING:
        global _CORES_SIZE
        _CORES[key] = core
        _CORES_SIZE += core.size
        while len(_CORES) > 1 and _CORES_SIZE > CORE_VALUES_KEPT:
            _CORES_SIZE -= _CORES.popitem(last=False)[1].size
    return core


@dataclass(frozen=True)
class FiringAlert:
    labels: dict[str, str]
    annotations: dict[str, str]


class AlertState:
    """One alert series' state, as Prometheus keeps it (rules/alerting.go): pending from the
    first evaluation at which its expression holds, firing once that is at least `for` ago,
    inactive again at the first evaluation at which it does not hold."""

    def __init__(self, hold: int):
        self.hold = hold  # `for`, in the simulation's units
        self.active_at: int | None = None

    def evaluate(self, at: int, holds: bool) -> bool:
        """One evaluation at `at`, where the expression holds or not: whether the alert fires."""
        if not holds:
            self.active_at = None
            return False
        if self.active_at is None:
            self.active_at = at
        return at - self.active_at >= self.hold


def _fast(counters: tuple[list[float], list[float]]) -> list[float]:
    """The `le=threshold` bucket: every call that was not too slow."""
    total, slow = counters
    return [t - s for t, s in zip(total, slow, strict=True)]
