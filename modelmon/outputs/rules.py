"""Prometheus recording and alert rules from the SLO plans of one service file, built as data.

Rates are shared, alerts are per SLO:
- `<service>-sli`: every rate the SLIs divide, recorded once per window however many
  SLOs read it (the availability and error-rate SLOs read the same requests and
  errors), the missing-error-series guard included; then each SLO's error ratio per
  window, divided from those records. Windows under 6h only, each read from raw counters.
- `<service>-sli-tiles` (every 5m): the 5m rates just recorded, kept every 5 minutes:
  back-to-back 5-minute tiles of the traffic, 12 samples an hour instead of 240.
- `<service>-sli-long` (every 1m): windows of 6h and more (and the period) as averages
  of the tiles, then each SLO's long-window ratios.
- `<service>-<slo>-sli`: an SLO's short-window ratios, when Sloth's rule_intervals plugin gives
  them an interval of their own;
- `<service>-<slo>-meta`: objective, budget, burn rates and budget remaining;
- `<service>-<slo>-alerts`: one multi-window burn-rate rule per window pair (labelled
  with the pair, so a notification says which one fired) and the threshold alerts.
Rules of a group run in order at one timestamp, so a ratio reads the rates of its own
evaluation, and the errors guard the requests recorded just before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from modelmon.cache import KeptContent, ServiceTexts
from modelmon.conventions import (
    BUDGET_REMAINING_RECORD,
    COVERAGE_LOOKBACK,
    COVERAGE_RECORD,
    CURRENT_BURN_RECORD,
    ERROR_BUDGET_RECORD,
    LONG_INTERVAL,
    OBJECTIVE_RECORD,
    PERIOD_BURN_RECORD,
    PERIOD_DAYS_RECORD,
    SHORT_WINDOW,
    SLOTH_INFO_RECORD,
    SLOTH_WINDOW_LABEL,
    TILE_INTERVAL,
    TILE_WINDOW,
    alerts_group,
    long_group,
    meta_group,
    sli_group,
    slo_sli_group,
    tiles_group,
)
from modelmon.durations import parse_duration
from modelmon.formatting import number
from modelmon.layout import Layout
from modelmon.plan import (
    AlertPlan,
    BurnAlertPlan,
    ProjectPlan,
    ServicePlan,
    Signal,
    SloPlan,
    ThresholdAlertPlan,
    is_derived,
)
from modelmon.serialize import dump_yaml


@dataclass
class RuleFile:
    """The groups of one service's rule file, and which SLO each rule was written for."""

    groups: list[dict] = field(default_factory=list)
    owners: dict[tuple[str, int], str] = field(default_factory=dict)  # (group, index from 1) -> SLO, for errors

    def add(self, name: str, rules: list[tuple[dict, str | None]], interval: str | None = None) -> None:
        if not rules:
            return
        group: dict = {"name": name}
        if interval is not None:
            group["interval"] = interval
        group["rules"] = [rule for rule, _ in rules]
        self.groups.append(group)
        for index, (_, owner) in enumerate(rules, start=1):
            if owner is not None:
                self.owners[(name, index)] = owner

    @property
    def group_names(self) -> list[str]:
        return [g["name"] for g in self.groups]


def files(
    project: ProjectPlan, layout: Layout, stand_in: bool = False, kept: ServiceTexts | None = None
) -> dict[str, str | KeptContent]:
    """One rule file per service, and for the promtool tests of a service with MetricsQL SLIs the
    copy they load (STAND_IN for each MetricsQL query); `stand_in`: the rule files alone, as promtool
    can parse them. `kept`: the rule files earlier builds made, by service plan (unread: KeptContent)."""
    found = {}
    for service in project.services:
        metricsql = any(plan.metricsql for plan in service.slos)
        header = layout.header([service.source])
        found[layout.rules_path(service.service)] = _kept_file(service, header, stand_in and metricsql, kept)
        if metricsql and not stand_in and layout.promtool_tests:
            found[layout.test_rules_path(service.service)] = _kept_file(service, header + STAND_IN_NOTE, True, kept)
    return found


def _kept_file(service: ServicePlan, header: str, stand_in: bool, kept: ServiceTexts | None) -> str | KeptContent:
    """A rule file of the service: `header`, then its rules."""

    def make() -> str:
        return header + _text(service, stand_in)

    if kept is None:
        return make()
    made = kept.contents(f"rules stand_in={stand_in}\0{header}", service, lambda: {"": make()})
    return made[""] if "" in made else make()  # (a kept head naming another part)


def _text(service: ServicePlan, stand_in: bool) -> str:
    built = rule_file(service.slos, stand_in)
    if built.group_names != list(service.rule_groups):  # promtool tests order the groups by the plan's names
        raise RuntimeError(f"rules write groups {built.group_names}, the plan names {service.rule_groups}")
    return dump_yaml({"groups": built.groups})


# In the rules promtool tests load, each MetricsQL query of an SLI (Sloth's validate_victoria_metrics
# plugin; vmalert checks those) is this PromQL instead: it records nothing, as the queries record
# nothing on the tests' input series, which give what they would record.
STAND_IN = "vector(1) unless vector(1)"
STAND_IN_NOTE = (
    "# The rules of this service as its promtool tests load them: each MetricsQL query (vmalert checks\n"
    f"# them) is `{STAND_IN}`, which records nothing, as the queries record nothing on\n"
    "# the tests' input series, which give what they would record.\n"
)


def rule_file(plans: Sequence[SloPlan], stand_in: bool = False) -> RuleFile:
    """The service's rules; `stand_in`: as promtool tests load them, STAND_IN for every MetricsQL query."""
    if not plans:
        return RuleFile()
    service = plans[0].service
    signals = file_signals(plans)
    metricsql = metricsql_signals(plans) if stand_in else set()
    out = RuleFile()
    windows = _sorted({w for used in signals.values() for w in used.windows})
    short = [
        (recording_rule(s.rate(w), STAND_IN if s in metricsql else s.expr(w), s.labels), used.owner)
        for w in windows
        if not _derived(w)
        for s, used in signals.items()
        if w in used.windows
    ]
    short += [(_ratio_record(p, w, stand_in), p.name) for p in plans if not p.intervals for w in p.raw_windows]
    out.add(sli_group(service), short)
    for plan in plans:
        if plan.intervals:
            ratios = [(_ratio_record(plan, w, stand_in), plan.name) for w in plan.raw_windows]
            out.add(slo_sli_group(service, plan.name), ratios, plan.intervals.sli)

    tiled, ratio_tiled = tile_sources(plans, signals)
    # A tile is the 5m rate the SLI group has just recorded (guard included), kept every 5 minutes.
    tiles = [(recording_rule(s.tile, s.read(s.rate(TILE_WINDOW)), s.labels), signals[s].owner) for s in tiled]
    tiles += [
        (recording_rule(p.ratio_tile, f"{p.sli_record(TILE_WINDOW)}{p.selector}", p.ratio_tile_labels), p.name)
        for p in ratio_tiled
    ]
    tiles += coverage_rules(plans, signals)
    out.add(tiles_group(service), tiles, TILE_INTERVAL)
    long = [
        (recording_rule(s.rate(w), f"avg_over_time({s.read(s.tile)}[{w}])", s.labels), used.owner)
        for w in windows
        if _derived(w)
        for s, used in signals.items()
        if w in used.windows and s.shared
    ]
    long += [(_ratio_record(p, w), p.name) for p in plans for w in p.derived_windows]
    out.add(long_group(service), long, LONG_INTERVAL)

    for plan in plans:
        meta, alerts = (plan.intervals.meta, plan.intervals.alerts) if plan.intervals else (None, None)
        out.add(meta_group(plan.service, plan.name), [(r, plan.name) for r in meta_rules(plan)], meta)
        out.add(alerts_group(plan.service, plan.name), [(r, plan.name) for r in alert_rules(plan)], alerts)
    return out


@dataclass
class SignalUse:
    windows: set[str]  # every window some SLO reads the signal over
    owner: str  # the first SLO that reads it: the one named when promtool refuses its rule


def file_signals(plans: list[SloPlan]) -> dict[Signal, SignalUse]:
    """Every signal of the file, in first use (guard targets first), with its windows and first reader."""
    found: dict[Signal, SignalUse] = {}
    for plan in plans:
        for signal in plan.signals:
            found.setdefault(signal, SignalUse(set(), plan.name)).windows.update(plan.windows)
    return found


def tile_sources(plans: list[SloPlan], signals: dict[Signal, SignalUse]) -> tuple[list[Signal], list[SloPlan]]:
    """What gets a tile: every signal some long window reads, and each raw SLI with a long window."""
    tiled = [s for s, used in signals.items() if any(_derived(w) for w in used.windows)]
    return tiled, [p for p in plans if p.total is None and p.derived_windows]


def coverage_clocks(plans: list[SloPlan]) -> dict[tuple[str, str], SloPlan]:
    """Each clock the file's coverages read, (record, selector) -> the first SLO that reads it."""
    found: dict[tuple[str, str], SloPlan] = {}
    for plan in plans:
        if plan.coverage_clock is not None:
            found.setdefault(plan.coverage_clock, plan)
    return found


def clock_rule(plan: SloPlan, raw: bool = False) -> dict:
    """The clock of `plan`'s coverage: the timestamp of the tile it counts; `raw`: of the query that
    records the tile (for a backfill, which cannot read the tiles it writes)."""
    if plan.total is None:
        tile = plan.error_ratio_expr(TILE_WINDOW) if raw else f"{plan.ratio_tile}{plan.selector}"
        labels = plan.ratio_tile_labels
    else:
        total = plan.total
        tile = total.expr(TILE_WINDOW, raw=True) if raw else total.read(total.tile)
        labels = total.labels
    return recording_rule(plan.coverage_clock[0], f"timestamp({tile})", labels)


def coverage_rules(plans: list[SloPlan], signals: dict[Signal, SignalUse]) -> list[tuple[dict, str]]:
    """Each period's clock (the timestamp of every tile it counts from), then each SLO's coverage:
    the time since the oldest tile of the period, plus the 5 minutes that tile stands for."""
    clocks = [
        (clock_rule(plan), plan.name if plan.total is None else signals[plan.total].owner)
        for plan in coverage_clocks(plans).values()
    ]
    coverage = []
    tile_s = parse_duration(TILE_WINDOW)
    for plan in plans:
        if plan.coverage_clock is None:
            continue
        record, selector = plan.coverage_clock
        expr = (
            f"clamp_max(\n  (time() - min_over_time({record}{selector}[{plan.period}]) + {tile_s})\n"
            f"  / {plan.period_s},\n  1\n)"
        )
        coverage.append((recording_rule(COVERAGE_RECORD, expr, {**plan.strip_labels, **plan.labels}), plan.name))
    return [*clocks, *coverage]


def _ratio_record(plan: SloPlan, window: str, stand_in: bool = False) -> dict:
    # The SLO's labels, not the shared rates': those say which selector read them, the SLO says it better.
    labels = {**plan.strip_labels, **plan.labels, **plan.window_labels(window)}
    metricsql = stand_in and plan.metricsql and plan.total is None  # a raw SLI's ratio is its own query
    return recording_rule(plan.sli_record(window), STAND_IN if metricsql else plan.ratio_expr(window), labels)


def metricsql_signals(plans: Sequence[SloPlan]) -> set[Signal]:
    """The signals whose queries are MetricsQL: an events SLI's own, when its SLO says so."""
    return {s for p in plans if p.metricsql for s in p.signals if not s.shared}


def metricsql_queries(plan: SloPlan) -> list[tuple[tuple[str, str], str]]:
    """Every MetricsQL query the SLO's rules run, once each, with the SLI field it comes from
    (("events", "error_query"), ...): what vmalert checks."""
    if not plan.metricsql:
        return []
    if plan.total is None:
        found = [(("raw", "error_ratio_query"), plan.ratio_expr(w)) for w in plan.raw_windows]
    else:
        own = metricsql_signals([plan])  # the same queries the stand-in replaces
        fields = {plan.total: "total_query", plan.bad: "error_query"}
        found = [(("events", fields[s]), s.expr(w)) for s in plan.signals if s in own for w in plan.raw_windows]
    return list(dict.fromkeys(found))


def recording_rule(name: str, expr: str, labels) -> dict:
    return {"record": name, "expr": expr + "\n", "labels": dict(labels)}


def _sorted(windows: set[str]) -> list[str]:
    return sorted(windows, key=parse_duration)


def _derived(window: str) -> bool:
    return is_derived(parse_duration(window))


def meta_rules(plan: SloPlan) -> list[dict]:
    budget = number(plan.budget)
    period_ratio = f"{plan.sli_record(plan.period)}{plan.selector}"
    current = f"{plan.sli_record(SHORT_WINDOW)}{plan.selector}"
    # Errors so far against the budget of a whole period at the traffic seen (see COVERAGE_RECORD).
    spent = period_ratio
    if plan.coverage_clock is not None:
        # The coverage says no window: the ratio's window label (Sloth's) must not keep them apart.
        times = f"* ignoring ({SLOTH_WINDOW_LABEL})" if plan.sloth else "*"
        spent = f"{period_ratio} {times} last_over_time({COVERAGE_RECORD}{plan.selector}[{COVERAGE_LOOKBACK}])"
    # The burn rates and the budget say the window they are read over, as Sloth's do.
    records = [
        (OBJECTIVE_RECORD, f"vector({number(plan.objective_ratio)})", {}),
        (ERROR_BUDGET_RECORD, f"vector({budget})", {}),
        (PERIOD_DAYS_RECORD, f"vector({number(Decimal(plan.period_s) / 86400)})", {}),
        (CURRENT_BURN_RECORD, f"{current} / {budget}", plan.window_labels(SHORT_WINDOW)),
        (PERIOD_BURN_RECORD, f"{period_ratio} / {budget}", plan.window_labels(plan.period)),
        (BUDGET_REMAINING_RECORD, f"1 - {spent} / {budget}", plan.window_labels(plan.period)),
    ]
    rules = [{"record": name, "expr": expr, "labels": {**plan.labels, **window}} for name, expr, window in records]
    if (info := plan.info_labels) is not None:
        rules.append({"record": SLOTH_INFO_RECORD, "expr": "vector(1)", "labels": info})
    return rules


def alert_rules(plan: SloPlan) -> list[dict]:
    return [alert_rule(plan, a) for a in plan.alerts()]


def alert_rule(plan: SloPlan, alert: AlertPlan) -> dict:
    """The rule of one planned alert: its expression here, its labels and annotations from the plan."""
    rule = {"alert": alert.name, "expr": alert_expr(plan, alert) + "\n"}
    if alert.for_s:  # without, it fires at the first evaluation that holds
        rule["for"] = alert.for_
    return {**rule, "labels": dict(alert.labels), "annotations": dict(alert.annotations)}


def alert_expr(plan: SloPlan, alert: AlertPlan) -> str:
    if isinstance(alert, BurnAlertPlan):
        threshold = number(alert.threshold)
        long = plan.without_window(f"{plan.sli_record(alert.long)}{plan.selector} > {threshold}")
        short = plan.without_window(f"{plan.sli_record(alert.short)}{plan.selector} > {threshold}")
        return f"(\n  {long}\n)\nand\n(\n  {short}\n)"
    if isinstance(alert, ThresholdAlertPlan):
        ratio = f"{plan.sli_record(SHORT_WINDOW)}{plan.selector}"
        return plan.without_window(
            f"(1 - {ratio}) < {number(alert.ratio)}" if alert.below else f"{ratio} > {number(alert.ratio)}"
        )
    return plan.without_window(f"{BUDGET_REMAINING_RECORD}{plan.selector} <= 0")
