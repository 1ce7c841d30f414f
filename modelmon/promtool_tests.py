"""promtool unit tests for every SLO, generated from the same plans as the rules.

Each SLO gets scenarios of model traffic (healthy for a whole period, a full
outage of one model, a slow burn, each side of every threshold). The traffic is
written as promtool input series; what must happen is computed by replaying the
same counters through `modelmon.promsim`, and promtool then proves the rules
against it: an alert one evaluation before it may fire (silent) and at the
minute it fires, the other models silent, and the recorded values exact.

Traffic rates are multiples of 1/64 per second on a base of 1024 calls per
second, so every counter and rate is exact in binary floating point and the
expected values agree with the engine to the last bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

from modelmon import contract, promsim
from modelmon.conventions import COVERAGE_LOOKBACK, COVERAGE_RECORD, MATCHER, SHORT_WINDOW, TILE_WINDOW
from modelmon.durations import format_duration, parse_duration
from modelmon.formatting import hours_text, number
from modelmon.gotemplate import render
from modelmon.plan import BudgetAlertPlan, BurnAlertPlan, SloPlan, ThresholdAlertPlan, is_derived
from modelmon.rules import alert_rule

Alert = BurnAlertPlan | ThresholdAlertPlan | BudgetAlertPlan

TOTAL_PER_S = 1024.0
ERROR_GRAIN = 64  # error rates are whole multiples of 1/64 per second
REQUEST_KINDS = ("availability", "error_rate")
RECORDED_INPUT_KINDS = ("events", "raw")  # user queries: tests feed the recorded ratios


class TestGenerationError(ValueError):
    """A spec the rules compile from, but for which no test traffic can be built."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.slo = ""


@dataclass(frozen=True)
class Phase:
    start: int  # unit of time (minute, unless the scenario says) from which these per-second rates apply
    total: float
    errors: float


@dataclass
class Traffic:
    """The calls one series of labels (one model) receives over the scenario."""

    labels: dict[str, str]
    phases: list[Phase]
    error_series: bool = True  # False: the backend never created model_errors_total for it

    def counters(self, length: int, unit: int = 60) -> tuple[list[float], list[float]]:
        """Both counters at every unit (of `unit` seconds) from 0 to `length`."""
        total, errors = [0.0], [0.0]
        for at in range(length):
            phase = [p for p in self.phases if p.start <= at][-1]
            total.append(total[-1] + phase.total * unit)
            errors.append(errors[-1] + phase.errors * unit)
        return total, errors


def group_key(plan: SloPlan, labels: dict[str, str]) -> tuple[str, ...]:
    """The SLO group a series of `labels` falls in: its values of the group-by labels."""
    return tuple(labels.get(label, "") for label in plan.group_by)


def scrape_unit(plan: SloPlan) -> int:
    """The scenarios' unit at the spec's scrape interval: the longest time dividing it and a minute."""
    return math.gcd(plan.scrape_s, 60)


def errors_per_s(ratio: Decimal | float) -> float:
    """The error rate closest to `ratio` of the base traffic, on the exact 1/64 grid."""
    return round(float(ratio) * TOTAL_PER_S * ERROR_GRAIN) / ERROR_GRAIN


def minutes(seconds: int) -> int:
    return seconds // 60


class Simulation:
    """The expected behaviour of one SLO's rules under one scenario's traffic.

    Windows under 6h are rates of the raw counters; longer ones average the 5m rates
    recorded at every evaluation before them (promtool evaluates every group at the
    test's interval). Long-window averages are first taken from running sums, which
    is fast, and computed exactly as the engine does wherever the exact bits matter:
    near a threshold, and for every value a test states.
    """

    def __init__(
        self, plan: SloPlan, traffic: list[Traffic], length: int, step: int = 1, every: int = 1, unit: int = 60
    ):
        self.plan = plan
        self.length = length
        self.unit = unit  # seconds in one unit of time: every time below counts them (a minute, or 15s)
        self.step = step  # units between two samples of the input series
        self.every = every  # units between two rule evaluations
        self.traffic = traffic
        self.counters = [t.counters(length, unit) for t in traffic]
        self.fast = [_fast(c) for c in self.counters] if plan.kind == "latency" else []
        groups: dict[tuple, list[int]] = {}
        order = sorted(range(len(traffic)), key=lambda i: sorted(traffic[i].labels.items()))
        for i in order:
            key = group_key(plan, traffic[i].labels)
            groups.setdefault(key, []).append(i)
        self.groups = groups
        self._ratios: dict[tuple, float | None] = {}
        self._tiles: dict[tuple, list[float | None]] = {}
        self._running: dict[tuple, tuple[list[float], list[int]]] = {}
        self._first: dict[tuple, int | None] = {}
        self._clock: dict[tuple, list[int]] = {}

    def units(self, seconds: int) -> int:
        return seconds // self.unit

    def sample_labels(self, key: tuple) -> dict[str, str]:
        return {**dict(zip(self.plan.group_by, key, strict=True)), **self.plan.labels}

    # --- rates of the raw counters ---------------------------------------------------

    def rate(self, role: str, window: int, minute: int, key: tuple) -> float | None:
        """The recorded rate of a signal (total, bad or good) of group `key` over `window` minutes."""
        members = self.groups[key]
        if role == "total":
            series = [self.counters[i][0] for i in members]
        elif role == "good":
            series = [self.fast[i] for i in members]
        else:
            series = [self.counters[i][1] for i in members if self.traffic[i].error_series]
        value = promsim.summed([promsim.rate(c, minute, window, self.step, self.unit) for c in series])
        if role == "bad" and value is None and self.plan.kind in REQUEST_KINDS:
            total = self.rate("total", window, minute, key)
            value = None if total is None else 0.0 * total  # `or on (...) 0 * requests`
        return value

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
            at = range(0, self.length + 1, self.every)
            if role == "ratio":
                self._tiles[role, key] = [self.raw_ratio(tile, m, key) for m in at]
            else:
                self._tiles[role, key] = [self.rate(role, tile, m, key) for m in at]
        return self._tiles[role, key]

    def _span(self, window: int, minute: int) -> tuple[int, int]:
        """Evaluations in the closed range [minute - window, minute] (Prometheus 2.x), as indices."""
        first = -(-max(0, minute - window) // self.every)
        return first, minute // self.every + 1

    def over_time(self, role: str, window: int, minute: int, key: tuple, exact: bool, total: bool = False):
        """avg_over_time(<tile>[window]) at `minute` (sum_over_time when `total`); None without tiles."""
        lo, hi = self._span(window, minute)
        if exact:
            present = [v for v in self.tiles(role, key)[lo:hi] if v is not None]
            return promsim.sum_over_time(present) if total else promsim.avg_over_time(present)
        if (role, key) not in self._running:
            sums, counts = [0.0], [0]
            for value in self.tiles(role, key):
                sums.append(sums[-1] + (value or 0.0))
                counts.append(counts[-1] + (value is not None))
            self._running[role, key] = (sums, counts)
        sums, counts = self._running[role, key]
        count = counts[hi] - counts[lo]
        if not count:
            return None
        return sums[hi] - sums[lo] if total else (sums[hi] - sums[lo]) / count

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
        clock = "ratio" if self.plan.total is None else "total"
        if (clock, key) not in self._clock:
            # For every evaluation: the index of the first evaluation from it on that recorded a tile.
            tiles = self.tiles(clock, key)
            following = [len(tiles)] * (len(tiles) + 1)
            for i in range(len(tiles) - 1, -1, -1):
                following[i] = i if tiles[i] is not None else following[i + 1]
            self._clock[clock, key] = following
        lo, hi = self._span(self.units(self.plan.period_s), at)
        first = self._clock[clock, key][lo]
        if first >= hi:
            return None
        since = float(at * self.unit) - float(first * self.every * self.unit)
        return min((since + parse_duration(TILE_WINDOW)) / self.plan.period_s, 1.0)

    def recent_coverage(self, at: int, key: tuple) -> float | None:
        """last_over_time(slo:period_coverage:ratio[15m]): the newest coverage recorded in the lookback."""
        oldest = at - self.units(parse_duration(COVERAGE_LOOKBACK))
        for t in range(at // self.every * self.every, max(oldest, 0) - 1, -self.every):
            if t >= oldest and (value := self.coverage(t, key)) is not None:
                return value
        return None

    def budget_spent(self, ratio: float, at: int, key: tuple) -> float | None:
        """The share of the period's budget the errors so far use (what budget remaining subtracts)."""
        if self.plan.coverage_clock is None:
            return ratio / float(number(self.plan.budget))
        coverage = self.recent_coverage(at, key)
        return None if coverage is None else ratio * coverage / float(number(self.plan.budget))

    def condition(self, alert: Alert, minute: int, key: tuple, exact: bool = False) -> tuple[bool, float]:
        """Whether the alert's expression holds, and its value (exact when asked for)."""
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

    def firing(self, alert: Alert, minute: int, key: tuple) -> bool:
        """Firing at evaluation `minute`: the condition held at every evaluation since
        one at least `for` ago (so it became active early enough)."""
        evaluations = -(-self.units(alert.for_s) // self.every)
        first = minute - evaluations * self.every
        if first < 0:
            return False
        return all(self.condition(alert, t, key)[0] for t in range(first, minute + 1, self.every))

    def first_firing(self, alert: Alert, key: tuple) -> int | None:
        """The first evaluation at which the alert fires: one pass, tracking when it became active."""
        if (alert, key) not in self._first:
            self._first[alert, key] = self._first_firing(alert, key)
        return self._first[alert, key]

    def _first_firing(self, alert: Alert, key: tuple) -> int | None:
        active_at = None
        for minute in range(0, self.length + 1, self.every):
            if not self.condition(alert, minute, key)[0]:
                active_at = None
                continue
            if active_at is None:
                active_at = minute
            if minute - active_at >= self.units(alert.for_s):
                return minute
        return None

    def expected_alerts(self, name: str, minute: int) -> list[dict]:
        expected = []
        for alert in self.plan.alerts():
            if alert.name != name:
                continue
            rule = alert_rule(self.plan, alert)
            for key in self.groups:
                if not self.firing(alert, minute, key):
                    continue
                sample = self.sample_labels(key)
                value = self.condition(alert, minute, key, exact=True)[1]
                expected.append(
                    {
                        "exp_labels": {**sample, **rule["labels"]},
                        "exp_annotations": {k: render(v, sample, value) for k, v in rule["annotations"].items()},
                    }
                )
        return sorted(expected, key=lambda e: sorted(e["exp_labels"].items()))


def _fast(counters: tuple[list[float], list[float]]) -> list[float]:
    """The `le=threshold` bucket: every call that was not too slow."""
    total, slow = counters
    return [t - s for t, s in zip(total, slow, strict=True)]


# --- Test traffic labels ----------------------------------------------------------


def _matchers(plan: SloPlan) -> list[tuple[str, str, str]]:
    selector = plan.traffic_selector
    return [(m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")) for m in MATCHER.finditer(selector)]


def _accepts(matchers: list[tuple[str, str, str]], label: str, value: str) -> bool:
    for name, op, pattern in matchers:
        if name != label:
            continue
        matched = re.fullmatch(pattern, value) is not None if op in ("=~", "!~") else value == pattern
        if matched != (op in ("=", "=~")):
            return False
    return True


def _guess(pattern: str) -> str:
    """A plain value a simple regex accepts: 'claude.*' -> 'claude', '(gpt|o1).*' -> 'gpt'."""
    text = re.sub(r"\((?:\?:)?([^|()]*)(?:\|[^()]*)?\)", r"\1", pattern)
    text = re.sub(r"\.[*+?]|\^|\$|\[[^\]]*\][*+?]?", "", text)
    return text.replace("\\", "") or "x"


def _candidates(label: str, matchers: list[tuple[str, str, str]]) -> list[str]:
    exact = [p for n, op, p in matchers if n == label and op == "="]
    if exact:
        pool = exact
    else:
        base = list(contract.EXAMPLE_MODELS) if label == contract.MODEL_LABEL else ["a", "b", "c", "d"]
        guesses = [_guess(p) for n, op, p in matchers if n == label and op == "=~"]
        pool = base + [f"{g}{suffix}" for g in guesses for suffix in ("", "-2", "-3", "-4")]
    return list(dict.fromkeys(v for v in pool if _accepts(matchers, label, v)))


def series_labels(plan: SloPlan, count: int) -> list[dict[str, str]]:
    """Up to `count` label sets of distinct SLO groups that the SLI's selector accepts."""
    matchers = _matchers(plan)
    names = list(plan.group_by)
    if plan.kind not in RECORDED_INPUT_KINDS and contract.MODEL_LABEL not in names:
        names.append(contract.MODEL_LABEL)
    names += [n for n, _, _ in matchers if n not in names]
    choices = {}
    for name in names:
        choices[name] = _candidates(name, matchers)
        if not choices[name]:
            raise TestGenerationError(
                ("sli", plan.kind, "selector"),
                f"no test value for label {name!r} satisfies the selector; use matchers that a plain value can satisfy",
            )
    varying = names[0] if names else None
    sets = []
    for i in range(count if varying in plan.group_by else 1):
        if varying and i >= len(choices[varying]):
            break
        sets.append({n: choices[n][i] if n == varying else choices[n][0] for n in names})
    return sets


# --- Scenarios --------------------------------------------------------------------


@dataclass
class Scenario:
    title: str
    traffic: list[Traffic]
    length: int
    alert_minutes: dict[str, list[int]] = field(default_factory=dict)
    expr_minute: int | None = None
    expr_records: tuple[str, ...] = ()
    step: int = 1  # units between input samples
    every: int = 1  # units between rule evaluations (one test file per evaluation interval)
    unit: int = 60  # seconds in a unit: a minute, or the scrape interval for the fast page

    def simulation(self, plan: SloPlan) -> Simulation:
        return Simulation(plan, self.traffic, self.length, self.step, self.every, self.unit)


def healthy_ratio(plan: SloPlan) -> float:
    """Comfortably inside the objective and under every threshold alert."""
    limits = [plan.budget / 2] + [a.error_ratio / 2 for a in plan.threshold_alerts]
    return errors_per_s(min(limits)) / TOTAL_PER_S


def scenarios(plan: SloPlan) -> list[Scenario]:
    found = [healthy_period(plan)]
    steps = (
        budget_spent,
        fast_page,
        scraped_blip,
        full_outage,
        fresh_outage,
        fresh_burn,
        blip,
        slow_burn,
        *threshold_scenarios(plan),
    )
    for build in steps:
        scenario = build(plan)
        if scenario is not None:
            found.append(scenario)
    return found


# A whole period at one evaluation a minute is 43,200 evaluations of every rule:
# minutes of promtool time. The period scenario is scraped every 2 minutes (still
# three samples per 5m window) and evaluated every 30 minutes, in a file of its own.
PERIOD_STEP, PERIOD_EVERY = 2, 30


def healthy_period(plan: SloPlan) -> Scenario:
    ok = errors_per_s(healthy_ratio(plan))
    traffic = [Traffic(labels, [Phase(0, TOTAL_PER_S, ok)]) for labels in series_labels(plan, 2)]
    length = minutes(plan.period_s) // PERIOD_EVERY * PERIOD_EVERY
    longest = max((minutes(a.long_s + a.for_s) for a in plan.burn_alerts), default=5)
    checks = sorted({m // PERIOD_EVERY * PERIOD_EVERY for m in (min(longest + 60, length), length // 2, length)})
    return Scenario(
        title=f"healthy traffic at {_bad(plan, ok)} fires nothing over the {plan.period} period",
        traffic=traffic,
        length=length,
        alert_minutes={name: checks for name in plan.alert_names()},
        expr_minute=length,
        expr_records=("period",),
        step=PERIOD_STEP,
        every=PERIOD_EVERY,
    )


# How fast the budget-spent scenario burns: a whole period's budget in a tenth of the period.
SPENDING = Decimal(10)


def budget_spent(plan: SloPlan) -> Scenario | None:
    """Ten times the budget's error ratio from the start of the data: a tenth into the period,
    the errors so far are a whole period's budget, and the SLA-violated alert fires."""
    if not plan.budget_alerts:
        return None
    alert = plan.budget_alerts[0]
    share = min(SPENDING * plan.budget, Decimal(1))
    bad = errors_per_s(share)
    labels = series_labels(plan, 2)
    ok = errors_per_s(healthy_ratio(plan))
    traffic = [Traffic(labels[0], [Phase(0, TOTAL_PER_S, bad)])]
    traffic += [Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]) for extra in labels[1:]]
    spent_at = minutes(int(plan.period_s * plan.budget / share) + alert.for_s)
    horizon = (spent_at // PERIOD_EVERY + 2) * PERIOD_EVERY
    sim = Simulation(plan, traffic, horizon, PERIOD_STEP, PERIOD_EVERY)
    key = group_key(plan, labels[0])
    fired = sim.first_firing(alert, key)
    if fired is None:
        raise TestGenerationError(("alerting", "budget_alert"), "a spent budget never fires the budget alert")
    return Scenario(
        title=f"{_bad(plan, bad)} ({number(share / plan.budget)}x the budget){_who(plan, labels[0])} from the first "
        f"minute of data spend a whole {plan.period} budget after {hours_text(Decimal(fired * 60))}: "
        f"the SLA-violated alert fires at minute {fired}, not before",
        traffic=traffic,
        length=fired,
        alert_minutes={alert.name: [fired - PERIOD_EVERY, fired]},
        expr_minute=fired,
        expr_records=("period",),
        step=PERIOD_STEP,
        every=PERIOD_EVERY,
    )


def full_outage(plan: SloPlan) -> Scenario | None:
    pages = [a for a in plan.burn_alerts if a.kind == "page"]
    if not pages:
        return None
    ok = errors_per_s(healthy_ratio(plan))
    start = max(minutes(a.long_s) for a in pages)
    labels = series_labels(plan, 4)
    broken = labels[0]
    traffic = [Traffic(broken, [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, TOTAL_PER_S)])]
    # Beside the broken model: a healthy one, one whose backend never created an
    # error series (requests only), and an idle one (0/0 must not fire).
    roles = ["healthy", *(["no error series"] if plan.kind in REQUEST_KINDS else []), "idle"]
    for extra, role in zip(labels[1:], roles, strict=False):
        if role == "idle":
            traffic.append(Traffic(extra, [Phase(0, 0.0, 0.0)]))
        elif role == "no error series":
            traffic.append(Traffic(extra, [Phase(0, TOTAL_PER_S, 0.0)], error_series=False))
        else:
            traffic.append(Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]))
    horizon = start + max(minutes(a.long_s + a.for_s) for a in pages) + 2
    sim = Simulation(plan, traffic, horizon)
    key = group_key(plan, broken)
    fired = [sim.first_firing(a, key) for a in pages]
    fired = [m for m in fired if m is not None]
    if not fired:
        raise TestGenerationError(("alerting",), "a full outage never fires a page alert; check the windows")
    checks = sorted({m for first in fired for m in (first - 1, first)} | {start})
    who = _who(plan, broken)
    return Scenario(
        title=f"{_outage(plan)}{who} from minute {start} fires the burn-rate page at minute {min(fired)}, "
        "not before, and leaves other models silent",
        traffic=traffic,
        length=max(*checks, start + 30),
        alert_minutes={a.name: checks for a in pages[:1]},
        expr_minute=start + 30,
        expr_records=tuple(plan.sli_windows[:1]),
    )


def fast_page(plan: SloPlan) -> Scenario | None:
    """A full outage at the spec's own scrape interval: the outage alert pages within minutes."""
    if not plan.outage_alerts:
        return None
    alert = plan.outage_alerts[0]
    unit = scrape_unit(plan)
    per_minute = 60 // unit
    ok = errors_per_s(healthy_ratio(plan))
    start = 10 * per_minute  # minutes of healthy traffic first: the 5m window is full of it
    labels = series_labels(plan, 2)
    traffic = [Traffic(labels[0], [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, TOTAL_PER_S)])]
    traffic += [Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]) for extra in labels[1:]]
    horizon = start + (parse_duration(SHORT_WINDOW) + alert.for_s) // unit + per_minute
    sim = Simulation(plan, traffic, horizon, unit=unit)
    key = group_key(plan, labels[0])
    fired = sim.first_firing(alert, key)
    if fired is None:
        raise TestGenerationError(("alerting", "outage_alert", "above"), "a full outage never fires the outage alert")
    return Scenario(
        title=f"{_outage(plan)}{_who(plan, labels[0])} scraped every {format_duration(unit)} pages through "
        f"the outage alert {format_duration((fired - start) * unit)} after it starts, not before",
        traffic=traffic,
        length=fired,
        alert_minutes={alert.name: [fired - 1, fired]},
        unit=unit,
    )


def fresh_outage(plan: SloPlan) -> Scenario | None:
    """A 10-minute full outage half an hour into a fresh Prometheus: it pages, but the errors are
    a sliver of a whole period's budget, so the SLA-violated alert stays silent."""
    if not plan.budget_alerts:
        return None
    start, end, length = 30, 40, 180
    ok = errors_per_s(healthy_ratio(plan))
    labels = series_labels(plan, 2)
    phases = [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, TOTAL_PER_S), Phase(end, TOTAL_PER_S, ok)]
    traffic = [Traffic(labels[0], phases)]
    traffic += [Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]) for extra in labels[1:]]
    checks: dict[str, list[int]] = {plan.budget_alerts[0].name: [end, 60, length]}
    paged = ""
    if plan.outage_alerts:
        alert = plan.outage_alerts[0]
        fired = Simulation(plan, traffic, length).first_firing(alert, group_key(plan, labels[0]))
        if fired is not None:
            checks[alert.name] = [fired - 1, fired]
            paged = f"pages at minute {fired} and "
    return Scenario(
        title=f"on a Prometheus with {length} minutes of data, {_outage(plan)}{_who(plan, labels[0])} "
        f"from minute {start} to {end} {paged}leaves most of the {plan.period} budget: no SLA-violated alert",
        traffic=traffic,
        length=length,
        alert_minutes=checks,
        expr_minute=length,
        expr_records=("period",),
    )


def fresh_burn(plan: SloPlan) -> Scenario | None:
    """Three days of errors at 4x the budget's rate on a Prometheus that holds just those days: the
    period's error ratio is 4x the budget, yet only 40 % of a whole period's budget is used."""
    if not plan.budget_alerts:
        return None
    alert = plan.budget_alerts[0]
    share = min(FRESH_BURN * plan.budget, Decimal(1))
    labels = series_labels(plan, 1)[0]
    traffic = [Traffic(labels, [Phase(0, TOTAL_PER_S, errors_per_s(share))])]
    length = 3 * 1440
    sim = Simulation(plan, traffic, length, PERIOD_STEP, PERIOD_EVERY)
    fired = sim.first_firing(alert, group_key(plan, labels))
    outcome = f"fires the SLA-violated alert at minute {fired}" if fired is not None else "no SLA-violated alert"
    return Scenario(
        title=f"on a Prometheus with 3 days of data, {_bad(plan, errors_per_s(share))} ({number(FRESH_BURN)}x the "
        f"budget){_who(plan, labels)} from the first minute use part of the {plan.period} budget: {outcome}",
        traffic=traffic,
        length=length,
        alert_minutes={alert.name: [PERIOD_EVERY, length // 2 // PERIOD_EVERY * PERIOD_EVERY, length]},
        expr_minute=length,
        expr_records=("period",),
        step=PERIOD_STEP,
        every=PERIOD_EVERY,
    )


# The first-period example: a 99% SLO at 4% errors for three days read -300% of its budget.
FRESH_BURN = Decimal(4)

# The blip every alert must ride out: a few minutes of errors that no one should be woken for.
BLIP_RATIO, BLIP_MINUTES = Decimal("0.2"), 5


def scraped_blip(plan: SloPlan) -> Scenario | None:
    """The blip at the spec's scrape interval, where the 5m ratio moves every scrape: the alerts on it
    (thresholds, outage) are checked at every evaluation from the first that a `for` allows to fire.
    The burn-rate alerts ride it out after hours of history (`blip`), which this short one lacks."""
    watched = [*plan.threshold_alerts, *plan.outage_alerts]
    if not watched:
        return None
    unit = scrape_unit(plan)
    per_minute = 60 // unit
    start = 10 * per_minute
    ok = errors_per_s(healthy_ratio(plan))
    bad = errors_per_s(BLIP_RATIO)
    labels = series_labels(plan, 1)[0]
    end = start + BLIP_MINUTES * per_minute
    traffic = [
        Traffic(labels, [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, bad), Phase(end, TOTAL_PER_S, ok)])
    ]
    hold = max(a.for_s for a in watched) // unit
    # After the blip the 5m ratio needs 5 minutes to fall back; any alert on it shows by then plus its `for`.
    length = end + 5 * per_minute + hold + per_minute
    sim = Simulation(plan, traffic, length, unit=unit)
    key = group_key(plan, labels)
    fired = sorted({a.name for a in watched if sim.first_firing(a, key) is not None})
    outcome = f"fires {', '.join(fired)}" if fired else "fires no threshold or outage alert"
    first = start + min(a.for_s for a in watched) // unit
    return Scenario(
        title=f"a {BLIP_MINUTES}-minute blip of {_bad(plan, bad)}{_who(plan, labels)} scraped every "
        f"{format_duration(unit)} {outcome}",
        traffic=traffic,
        length=length,
        alert_minutes={name: list(range(first, length + 1)) for name in dict.fromkeys(a.name for a in watched)},
        unit=unit,
    )


def blip(plan: SloPlan) -> Scenario:
    """Five minutes of 20% errors in healthy traffic: each alert is checked at every minute the
    blip can reach its windows, and (for the defaults) none fires."""
    # After hours of healthy traffic (the longest short window), as on a Prometheus in service:
    # on a fresh one the long windows hold only the blip's minutes, and a ticket would be right.
    start = max((minutes(a.short_s) for a in plan.burn_alerts), default=30)
    ok = errors_per_s(healthy_ratio(plan))
    bad = errors_per_s(BLIP_RATIO)
    labels = series_labels(plan, 1)[0]
    traffic = [
        Traffic(
            labels,
            [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, bad), Phase(start + BLIP_MINUTES, TOTAL_PER_S, ok)],
        )
    ]
    # The 5m ratio falls back 5 minutes after the blip; then the longest `for` of a 5m alert.
    hold = max((minutes(a.for_s) for a in (*plan.threshold_alerts, *plan.outage_alerts)), default=0)
    length = start + BLIP_MINUTES + 5 + hold + 2
    sim = Simulation(plan, traffic, length)
    key = group_key(plan, labels)
    fired = sorted({a.name for a in plan.alerts() if sim.first_firing(a, key) is not None})
    outcome = f"fires {', '.join(fired)}" if fired else "fires nothing"
    return Scenario(
        title=f"a {BLIP_MINUTES}-minute blip of {_bad(plan, bad)}{_who(plan, labels)} in healthy traffic {outcome}",
        traffic=traffic,
        length=length,
        alert_minutes={name: list(range(start, length + 1)) for name in plan.alert_names()},
    )


def slow_burn(plan: SloPlan) -> Scenario | None:
    """A burn between the ticket and page factors, after the longest ticket window of healthy
    traffic (as on a Prometheus in service): it tickets, never pages, never calls the budget spent.
    Days of traffic: scraped every 2 minutes and evaluated every 30, in the period's file."""
    tickets = [a for a in plan.burn_alerts if a.kind == "ticket"]
    pages = [a for a in plan.burn_alerts if a.kind == "page"]
    if not tickets:
        return None
    low = min(a.factor for a in tickets)
    ceiling = min((a.factor for a in pages), default=None)
    factor = low * Decimal("1.5")
    if ceiling is not None and factor >= ceiling:
        factor = (low + ceiling) / 2
    bad = errors_per_s(min(factor * plan.budget, Decimal(1)))
    labels = series_labels(plan, 2)
    ok = errors_per_s(healthy_ratio(plan))
    start = -(-max(minutes(a.long_s) for a in tickets) // PERIOD_EVERY) * PERIOD_EVERY
    traffic = [Traffic(labels[0], [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, bad)])]
    traffic += [Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]) for extra in labels[1:]]
    horizon = start + max(minutes(a.long_s + a.for_s) for a in tickets) + 2 * PERIOD_EVERY
    sim = Simulation(plan, traffic, horizon, PERIOD_STEP, PERIOD_EVERY)
    key = group_key(plan, labels[0])
    fired = [m for m in (sim.first_firing(a, key) for a in tickets) if m is not None]
    if not fired or any(sim.first_firing(a, key) is not None for a in pages):
        return None  # windows where no error ratio fires a ticket without a page
    # Check a little past the last ticket too, where a page would show if it fired.
    checks = sorted({m for first in fired for m in (first - PERIOD_EVERY, first)} | {max(fired) + PERIOD_EVERY})
    # Days of errors over the budget's rate, on a Prometheus that holds only these days: a burn, not a
    # spent period (the errors so far are a fraction of a whole period's budget).
    budget = {a.name: [max(checks)] for a in plan.budget_alerts}
    return Scenario(
        title=f"a slow burn{_who(plan, labels[0])} at {_bad(plan, bad)} ({number(factor)}x the budget) from "
        f"minute {start} fires the ticket alert at minute {min(fired)} and never pages"
        + (" nor calls the budget spent" if budget else ""),
        traffic=traffic,
        length=max(checks),
        alert_minutes={tickets[0].name: checks, **budget},
        expr_minute=min(fired),
        expr_records=tuple(plan.sli_windows),
        step=PERIOD_STEP,
        every=PERIOD_EVERY,
    )


def threshold_scenarios(plan: SloPlan):
    levels = sorted({a.error_ratio for a in plan.threshold_alerts})
    for level in levels:
        for side in (Decimal("0.9"), Decimal("1.1")):
            yield lambda p, ratio=level * side: _threshold_side(p, ratio)


def _threshold_side(plan: SloPlan, ratio: Decimal) -> Scenario:
    bad = errors_per_s(min(ratio, Decimal(1)))
    labels = series_labels(plan, 1)[0]
    traffic = [Traffic(labels, [Phase(0, TOTAL_PER_S, bad)])]
    hold = max(minutes(a.for_s) for a in plan.threshold_alerts)
    length = hold + 3
    name = plan.threshold_alerts[0].name
    measure = plan.threshold_alerts[0].measure
    shown = 1 - bad / TOTAL_PER_S if plan.threshold_alerts[0].below else bad / TOTAL_PER_S
    sim = Simulation(plan, traffic, length)
    key = group_key(plan, labels)
    fired = [m for m in (sim.first_firing(a, key) for a in plan.threshold_alerts) if m is not None]
    checks = sorted({m for first in fired for m in (first - 1, first)} | {length})
    outcome = (
        "fires "
        + " and ".join(sorted({a.severity for a in plan.threshold_alerts if sim.first_firing(a, key) is not None}))
        if fired
        else "fires nothing"
    )
    return Scenario(
        title=f"{measure} of {_pct(shown)}{_who(plan, labels)} {outcome}",
        traffic=traffic,
        length=length,
        alert_minutes={name: checks},
        expr_minute=length,
        expr_records=(SHORT_WINDOW,),
    )


def _who(plan: SloPlan, labels: dict[str, str]) -> str:
    shown = [f"{labels[g]}" for g in plan.group_by if g in labels]
    return f" of {'/'.join(shown)}" if shown else ""


def _bad(plan: SloPlan, errors: float) -> str:
    """A bad-event rate in the SLI's own words."""
    share = _pct(errors / TOTAL_PER_S)
    if plan.kind == "latency":
        return f"{share} of calls over {number(plan.threshold_ms)} ms"
    return f"{share} errors"


def _outage(plan: SloPlan) -> str:
    if plan.kind == "latency":
        return f"a latency outage (every call over {number(plan.threshold_ms)} ms)"
    return "a full outage"


def _pct(ratio: float) -> str:
    # Three digits: the traffic grid makes 5.5% exactly 5.4993%, which reads worse.
    return f"{ratio * 100:.3g}%"


# --- Writing the promtool test file ---------------------------------------------------


def series_text(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


def expanding(values: list[float | None]) -> str:
    """promtool's expanding notation: runs with a constant step become 'a+bxN'."""
    parts, i = [], 0
    while i < len(values):
        if values[i] is None:
            j = i
            while j + 1 < len(values) and values[j + 1] is None:
                j += 1
            parts.append("_" if j == i else f"_x{j - i + 1}")
            i = j + 1
            continue
        j = i
        step = None
        while j + 1 < len(values) and values[j + 1] is not None:
            delta = values[j + 1] - values[j]
            if step is None:
                step = delta
            elif delta != step:
                break
            j += 1
        if j == i:
            parts.append(_value(values[i]))
        else:
            sign = "+" if step >= 0 else "-"
            parts.append(f"{_value(values[i])}{sign}{_value(abs(step))}x{j - i}")
        i = j + 1
    return " ".join(parts)


def input_series(plan: SloPlan, sim: Simulation) -> list[dict]:
    series = []
    if plan.kind in RECORDED_INPUT_KINDS:
        # The rules cannot run the user's queries on test data: the test gives what those
        # queries record (rates, or a raw SLI's ratio), one sample per evaluation, and the
        # rules compute everything from there. (Per evaluation: promtool refuses queries over
        # 10,000 samples, and a period of them every 2 minutes would be 21,600.)
        for key in sim.groups:
            labels = sim.sample_labels(key)
            for record, values in _recorded_inputs(plan, sim, key):
                series.append({"series": series_text(record, labels), "values": expanding(values)})
        return series
    for traffic, (total, errors) in zip(sim.traffic, sim.counters, strict=True):
        if plan.kind == "latency":
            le = contract.le_label(float(plan.threshold_ms))
            named = (
                (contract.LATENCY_MS_COUNT, traffic.labels, total),
                (contract.LATENCY_MS_BUCKET, {**traffic.labels, "le": le}, sim.fast[sim.traffic.index(traffic)]),
            )
        else:
            named = [(contract.REQUESTS_TOTAL, traffic.labels, total)]
            if traffic.error_series:
                named.append((contract.ERRORS_TOTAL, traffic.labels, errors))
        series += [{"series": series_text(n, labels), "values": expanding(v[:: sim.step])} for n, labels, v in named]
    return series


def _recorded_inputs(plan: SloPlan, sim: Simulation, key: tuple) -> list[tuple[str, list[float | None]]]:
    """What an events or raw SLI's own queries record for one group, at every evaluation."""
    at = range(0, sim.length + 1, sim.every)
    tile = sim.units(parse_duration(TILE_WINDOW))
    if plan.total is None:
        found = [
            (plan.sli_record(w), [sim.raw_ratio(sim.units(parse_duration(w)), m, key) for m in at])
            for w in plan.raw_windows
        ]
        if plan.derived_windows:
            found.append((plan.ratio_tile, [sim.raw_ratio(tile, m, key) for m in at]))
        return found
    found = []
    for role, signal in (("total", plan.total), ("bad", plan.bad)):
        windows = [(signal.rate(w), sim.units(parse_duration(w))) for w in plan.raw_windows]
        if plan.derived_windows:
            windows.append((signal.tile, tile))
        found += [(record, [sim.rate(role, w, m, key) for m in at]) for record, w in windows]
    return found


def expr_tests(plan: SloPlan, sim: Simulation, minute: int, records: tuple[str, ...]) -> list[dict]:
    tests = []
    budget = float(number(plan.budget))
    for record in records:
        if record == "period":
            tests += _period_tests(plan, sim, minute, budget)
            continue
        samples = []
        for key in sim.groups:
            value = sim.ratio(sim.units(parse_duration(record)), minute, key)
            if value is not None:
                samples.append((sim.sample_labels(key), value))
        tests.append(_expr(plan.sli_record(record), plan, minute, samples, sim.unit))
        if record == SHORT_WINDOW:
            burn = [(labels, value / budget) for labels, value in samples]
            tests.append(_expr("slo:current_burn_rate:ratio", plan, minute, burn, sim.unit))
    return tests


def _period_tests(plan: SloPlan, sim: Simulation, minute: int, budget: float) -> list[dict]:
    ratios, remaining, coverage = [], [], []
    for key in sim.groups:
        value = sim.period_ratio(minute, key)
        if value is not None:
            ratios.append((sim.sample_labels(key), value))
            spent = sim.budget_spent(value, minute, key)
            if spent is not None:
                remaining.append((sim.sample_labels(key), 1 - spent))
        if plan.coverage_clock is not None and (covered := sim.coverage(minute, key)) is not None:
            coverage.append((sim.sample_labels(key), covered))
    constants = [
        ("slo:objective:ratio", float(number(plan.objective_ratio))),
        ("slo:error_budget:ratio", budget),
        ("slo:time_period:days", float(number(Decimal(plan.period_s) / 86400))),
    ]
    return [
        _expr(plan.sli_record(plan.period), plan, minute, ratios, sim.unit),
        _expr("slo:period_burn_rate:ratio", plan, minute, [(lb, v / budget) for lb, v in ratios], sim.unit),
        _expr("slo:period_error_budget_remaining:ratio", plan, minute, remaining, sim.unit),
        *([_expr(COVERAGE_RECORD, plan, minute, coverage, sim.unit)] if plan.coverage_clock is not None else []),
        *(_expr(name, plan, minute, [(dict(plan.labels), value)], sim.unit) for name, value in constants),
    ]


def _eval_time(at: int, unit: int) -> str:
    return format_duration(at * unit)


def _expr(record: str, plan: SloPlan, minute: int, samples: list[tuple[dict, float]], unit: int = 60) -> dict:
    return {
        "expr": f"{record}{plan.selector}",
        "eval_time": _eval_time(minute, unit),
        "exp_samples": [
            {"labels": series_text(record, labels), "value": value}
            for labels, value in sorted(samples, key=lambda s: sorted(s[0].items()))
        ],
    }


def test_group(plan: SloPlan, scenario: Scenario) -> dict:
    sim = scenario.simulation(plan)
    spacing = scenario.every if plan.kind in RECORDED_INPUT_KINDS else scenario.step
    group: dict = {
        "name": f"{plan.service}/{plan.name}: {scenario.title}",
        "interval": format_duration(spacing * scenario.unit),
        "input_series": input_series(plan, sim),
    }
    alert_tests = [
        {
            "eval_time": _eval_time(minute, scenario.unit),
            "alertname": name,
            "exp_alerts": sim.expected_alerts(name, minute),
        }
        for name, checks in scenario.alert_minutes.items()
        for minute in checks
    ]
    if alert_tests:
        group["alert_rule_test"] = alert_tests
    if scenario.expr_minute is not None:
        group["promql_expr_test"] = expr_tests(plan, sim, scenario.expr_minute, scenario.expr_records)
    return group


def test_files(plans: list[SloPlan], rules_path: str, group_order: list[str]) -> dict[int, dict]:
    """promtool test files keyed by their evaluation interval (seconds)."""
    groups: dict[int, list[dict]] = {}
    for plan in plans:
        try:
            for scenario in scenarios(plan):
                groups.setdefault(scenario.every * scenario.unit, []).append(test_group(plan, scenario))
        except TestGenerationError as err:
            err.slo = plan.name
            raise
    return {
        every: {
            "rule_files": [rules_path],
            "evaluation_interval": format_duration(every),
            # Record before alerting at each evaluation, so an alert reads the ratio
            # of the same instant (promtool's order is otherwise unspecified).
            "group_eval_order": group_order,
            "tests": tests,
        }
        for every, tests in sorted(groups.items())
    }
