"""The named scenarios every SLO's tests run: what traffic each model gets, and what must happen.

healthy_period: a whole period of healthy traffic fires nothing. budget_spent: ten times the
budget's error ratio from the start spends a whole period's budget, and the SLA-violated alert
fires then, not before. fast_page / scraped_blip: at the spec's scrape interval, a full outage
pages through the outage alert within minutes, and a blip fires no threshold or outage alert.
full_outage: the burn-rate page fires at its minute, the other models (healthy, without an error
series, idle) stay silent. fresh_outage / fresh_burn: on a Prometheus that holds only hours or
days of the period, errors do not read as the whole period's budget spent. blip: a 5-minute blip
after hours of healthy traffic. slow_burn: a burn between the ticket and page factors tickets and
never pages. threshold sides: just under and just over each threshold level.

Each scenario replays its traffic through the simulation to find the minutes that matter (one
evaluation before an alert may fire, and the one at which it does) and states them as checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from modelmon.conventions import SHORT_WINDOW
from modelmon.durations import format_duration, parse_duration
from modelmon.formatting import hours_text, number
from modelmon.outputs.promtool_tests.simulation import Simulation
from modelmon.outputs.promtool_tests.traffic import (
    REQUEST_KINDS,
    TOTAL_PER_S,
    Phase,
    TestGenerationError,
    Traffic,
    errors_per_s,
    group_key,
    series_labels,
)
from modelmon.plan import SloPlan, is_derived


def minutes(seconds: int) -> int:
    return seconds // 60


# The threshold and outage alerts' window: a blip leaves it this long after it ends.
SHORT_MINUTES = minutes(parse_duration(SHORT_WINDOW))


def scrape_unit(plan: SloPlan) -> int:
    """The scenarios' unit at the spec's scrape interval: the longest time dividing it and a minute."""
    return math.gcd(plan.scrape_s, 60)


# In a scenario's expr_records: the period's ratio, burn rate, budget remaining, coverage and
# the SLO's constants, beside the windows of the error ratio.
PERIOD = "period"


@dataclass
class Scenario:
    """One test group: the traffic and its length, the alerts checked at which times, and the
    records (`expr_records`: windows of the error ratio, or PERIOD) checked at `expr_minute`."""

    title: str
    traffic: list[Traffic]
    length: int
    alert_minutes: dict[str, list[int]] = field(default_factory=dict)
    expr_minute: int | None = None
    expr_records: tuple[str, ...] = ()
    step: int = 1  # units between input samples
    every: int = 1  # units between rule evaluations (one test file per evaluation interval)
    unit: int = 60  # seconds in a unit: a minute, or the scrape interval for the fast page
    # Checks left out because Prometheus 2 and 3 would answer them differently: (alert or
    # expression, eval time). The writer fills it in.
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def simulation(self, plan: SloPlan, version: int = 2) -> Simulation:
        """The scenario under Prometheus `version`'s engine."""
        return simulation(plan, self.traffic, self.length, self.step, self.every, self.unit, version)


def simulation(
    plan: SloPlan, traffic: list[Traffic], length: int, step: int = 1, every: int = 1, unit: int = 60, version: int = 2
) -> Simulation:
    """A scenario's traffic through the model. Traffic that changes is scraped half a unit off
    the evaluations, so that no range ever starts on a sample: Prometheus 2's closed ranges and
    3's left-open ones then select the same samples (docs/alerting.md, "Prometheus 2 and 3")."""
    # Steady traffic over days (the period's scenarios) is left on the evaluations: there both
    # engines' ranges hold the same even counter, and the input series stays a few bytes.
    offset = any(len(t.phases) > 1 for t in traffic) or length * unit <= OFFSET_UP_TO_S
    return Simulation(plan, traffic, length, step, every, unit, version, offset=offset)


OFFSET_UP_TO_S = 86400


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
    longest = max((minutes(a.long_s + a.for_s) for a in plan.burn_alerts), default=SHORT_MINUTES)
    checks = sorted({m // PERIOD_EVERY * PERIOD_EVERY for m in (min(longest + 60, length), length // 2, length)})
    return Scenario(
        title=f"healthy traffic at {_bad(plan, ok)} fires nothing over the {plan.period} period",
        traffic=traffic,
        length=length,
        alert_minutes={name: checks for name in plan.alert_names()},
        expr_minute=length,
        expr_records=(PERIOD,),
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
    sim = simulation(plan, traffic, horizon, PERIOD_STEP, PERIOD_EVERY)
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
        expr_records=(PERIOD,),
        step=PERIOD_STEP,
        every=PERIOD_EVERY,
    )


def window_unit(shortest_s: int) -> int:
    """The scenario unit for windows down to `shortest_s`: a minute, or the longest part of one
    that leaves two samples in the shortest window (scraped half a unit off the evaluations,
    a window of one unit would hold one)."""
    return next(u for u in (60, 30, 20, 15, 10, 5, 2, 1) if shortest_s >= 2 * u)


def full_outage(plan: SloPlan) -> Scenario | None:
    pages = [a for a in plan.burn_alerts if a.kind == "page"]
    if not pages:
        return None
    ok = errors_per_s(healthy_ratio(plan))
    unit = window_unit(min(a.short_s for a in pages))
    per_minute = 60 // unit
    # The outage starts once the raw-rate pages' long windows are full of healthy traffic, so
    # their firing minutes are a Prometheus in service's. Windows averaged from tiles are not
    # yet full then: a full one would hold one tile more on Prometheus 2 than on 3.
    raw = [a.long_s for a in pages if not is_derived(a.long_s)]
    start = max(raw, default=parse_duration(SHORT_WINDOW)) // unit
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
    horizon = start + max(a.long_s + a.for_s for a in pages) // unit + 2 * per_minute
    sim = simulation(plan, traffic, horizon, unit=unit)
    key = group_key(plan, broken)
    fired = [sim.first_firing(a, key) for a in pages]
    fired = [m for m in fired if m is not None]
    if not fired:
        raise TestGenerationError(("alerting",), "a full outage never fires a page alert; check the windows")
    checks = sorted({m for first in fired for m in (first - 1, first)} | {start})
    who = _who(plan, broken)
    return Scenario(
        title=f"{_outage(plan)}{who} from {_moment(start, unit)} fires the burn-rate page at "
        f"{_moment(min(fired), unit)}, not before, and leaves other models silent",
        traffic=traffic,
        length=max(*checks, start + 30 * per_minute),
        alert_minutes={a.name: checks for a in pages[:1]},
        expr_minute=start + 30 * per_minute,
        expr_records=tuple(plan.sli_windows[:1]),
        unit=unit,
    )


def _moment(at: int, unit: int) -> str:
    """A time of a scenario in words: minute 66, or 2m30s in units finer than a minute."""
    return f"minute {at * unit // 60}" if unit == 60 else format_duration(at * unit)


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
    sim = simulation(plan, traffic, horizon, unit=unit)
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
        fired = simulation(plan, traffic, length).first_firing(alert, group_key(plan, labels[0]))
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
        expr_records=(PERIOD,),
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
    sim = simulation(plan, traffic, length, PERIOD_STEP, PERIOD_EVERY)
    fired = sim.first_firing(alert, group_key(plan, labels))
    outcome = f"fires the SLA-violated alert at minute {fired}" if fired is not None else "no SLA-violated alert"
    return Scenario(
        title=f"on a Prometheus with 3 days of data, {_bad(plan, errors_per_s(share))} ({number(FRESH_BURN)}x the "
        f"budget){_who(plan, labels)} from the first minute use part of the {plan.period} budget: {outcome}",
        traffic=traffic,
        length=length,
        alert_minutes={alert.name: [PERIOD_EVERY, length // 2 // PERIOD_EVERY * PERIOD_EVERY, length]},
        expr_minute=length,
        expr_records=(PERIOD,),
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
    length = end + SHORT_MINUTES * per_minute + hold + per_minute
    sim = simulation(plan, traffic, length, unit=unit)
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
    length = start + BLIP_MINUTES + SHORT_MINUTES + hold + 2
    sim = simulation(plan, traffic, length)
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
    """A burn between the ticket and page factors, after the longest short window of the tickets
    of healthy traffic: it tickets, never pages, never calls the budget spent. Hours of traffic:
    scraped every 2 minutes and evaluated every 30, in the period's file. (After a full long
    window of healthy traffic, the ticket would fire with its window full, where Prometheus 2
    holds one tile more than 3 and the two state different values.)"""
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
    start = -(-max(minutes(a.short_s) for a in tickets) // PERIOD_EVERY) * PERIOD_EVERY
    traffic = [Traffic(labels[0], [Phase(0, TOTAL_PER_S, ok), Phase(start, TOTAL_PER_S, bad)])]
    traffic += [Traffic(extra, [Phase(0, TOTAL_PER_S, ok)]) for extra in labels[1:]]
    horizon = start + max(minutes(a.long_s + a.for_s) for a in tickets) + 2 * PERIOD_EVERY
    sim = simulation(plan, traffic, horizon, PERIOD_STEP, PERIOD_EVERY)
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
        # Every window's ratio once the ticket fires, from the evaluation after: the short
        # window's oldest tile is the burn's by then, on Prometheus 2 and 3 alike.
        expr_minute=min(fired) + PERIOD_EVERY,
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
    sim = simulation(plan, traffic, length)
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
