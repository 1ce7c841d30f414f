"""From a validated spec to a plan: every number and expression the outputs need.

Rules, promtool tests (and later dashboards and runbooks) are all written from
these plans, so an objective, a window or a threshold is decided once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from modelmon import contract
from modelmon.conventions import (
    ALERTNAME_LABEL,
    DERIVED_FROM_S,
    LONG_WINDOW_LABEL,
    SELECTOR_LABEL,
    SERVICE_LABEL,
    SEVERITY,
    SEVERITY_LABEL,
    SHORT_WINDOW,
    SHORT_WINDOW_LABEL,
    SLO_LABEL,
    SLOTH_ID_LABEL,
    SLOTH_MODE,
    SLOTH_MODE_LABEL,
    SLOTH_NAMES_VERSION,
    SLOTH_OBJECTIVE_LABEL,
    SLOTH_SERVICE_LABEL,
    SLOTH_SEVERITY_LABEL,
    SLOTH_SLO_LABEL,
    SLOTH_SPEC_LABEL,
    SLOTH_VERSION_LABEL,
    SLOTH_WINDOW_LABEL,
    TILE_WINDOW,
    WINDOW,
    WINDOW_PLACEHOLDER,
    alerts_group,
    clock_record,
    events_record,
    long_group,
    matchers,
    meta_group,
    rate_record,
    ratio_tile_record,
    record_level,
    sli_error_record,
    sli_group,
    slo_selector,
    slo_sli_group,
    sloth_id,
    tile_record,
    tiles_group,
)
from modelmon.durations import format_duration, parse_duration, prometheus_duration
from modelmon.formats import sloth
from modelmon.formatting import camel, number
from modelmon.spec import DEFAULT_FAMILIES, Family, Notifications, Slo, SloFile
from modelmon.textgen import alert_text


def is_derived(window_s: int) -> bool:
    return window_s >= DERIVED_FROM_S


@dataclass(frozen=True)
class Signal:
    """A per-second rate an SLI divides, recorded once per window and read by every SLO that needs it.

    Shared signals (the guide's metrics, by the SLO's group_by and selector) carry only the
    service's labels; an events SLI's own queries are signals of that SLO alone.
    """

    record: str  # level:metric, e.g. model:model_requests -> model:model_requests:rate1h
    query: str  # PromQL with WINDOW where the range goes
    labels: tuple[tuple[str, str], ...]  # written on every record of the signal
    read_labels: tuple[tuple[str, str], ...]  # what tells its records apart from others of the same name
    by: tuple[str, ...]  # the labels its rates are grouped by
    guard: Signal | None = None  # a signal whose `0 *` stands in where this one has no series
    # Shared signals also record each long window's average rate, read by every SLO on them.
    # An events SLI's own signals are read by that SLO alone, which sums their tiles directly.
    shared: bool = True

    def rate(self, window: str) -> str:
        return rate_record(self.record, window)

    @property
    def tile(self) -> str:
        return tile_record(self.record)

    @property
    def clock(self) -> str:
        """Each tile's own timestamp as its value: min_over_time of it is the oldest tile of a window."""
        return clock_record(self.tile)

    def read(self, record: str) -> str:
        return record + matchers(dict(self.read_labels))

    def expr(self, window: str, raw: bool = False) -> str:
        """The PromQL recording this signal over `window`; `raw`: its guard from raw data too,
        not from the guard's record (for a backfill, which cannot read rules it backfills)."""
        text = self.query.replace(WINDOW, window)
        if self.guard is None:
            return text
        twin = self.guard.expr(window) if raw else self.guard.read(self.guard.rate(window))
        # A model that never failed may have no error series at all: its requests, times 0,
        # give it an explicit 0 instead of dropping the model from the ratio.
        return f"{text}\nor on ({', '.join(self.by)})\n0 * {twin}"


@dataclass(frozen=True)
class DefaultWindow:
    severity: str
    long: str
    short: str
    budget_percent: Decimal
    for_: str


# The Google SRE workbook's multi-window multi-burn-rate set (as in Sloth and
# kubernetes-mixin): page when 2% of the budget burns in 1h or 5% in 6h, ticket
# when 10% burns in 1d or 3d. No `for`, as in Sloth: the short window is the guard
# against a blip (a generated test proves a 5-minute blip of 20% errors fires
# nothing), and a `for` on top only delays every alert (a 5x burn against 99.9%
# ticketed 3 hours after Sloth's rules with the 1h/3h `for`s this set once had).
DEFAULT_WINDOWS = (
    DefaultWindow("page", "1h", "5m", Decimal(2), "0m"),
    DefaultWindow("page", "6h", "30m", Decimal(5), "0m"),
    DefaultWindow("ticket", "1d", "2h", Decimal(10), "0m"),
    DefaultWindow("ticket", "3d", "6h", Decimal(10), "0m"),
)


@dataclass(frozen=True, kw_only=True)
class _Alert:
    """What every planned alert carries: its rule's labels and annotations (Go templates),
    overrides applied, filled in by plan_slo once the SLO's plan exists."""

    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def for_(self) -> str:
        return format_duration(self.for_s)


@dataclass(frozen=True)
class BurnAlertPlan(_Alert):
    """One multi-window burn-rate alert rule."""

    name: str
    severity: str  # critical | warning (Alertmanager-facing)
    kind: str  # page | ticket
    long: str
    short: str
    long_s: int
    short_s: int
    for_s: int
    budget_percent: Decimal
    factor: Decimal  # burn-rate factor derived from the period
    threshold: Decimal  # error-ratio threshold = factor x budget
    exhaustion_s: Decimal  # seconds until a whole period's budget is gone at the factor

    @property
    def window_label(self) -> str:
        return f"{self.long}/{self.short}"


@dataclass(frozen=True)
class ThresholdAlertPlan(_Alert):
    """A threshold alert on the 5m error ratio (error rate above, or availability below); the
    outage alert is one too, on the SLI's bad share (errors, slow calls or bad events) above."""

    name: str
    severity: str
    measure: str  # "availability" (below) | "error rate" | "slow calls" | "bad events" (above)
    percent: Decimal  # the spec's number, in the measure's own terms
    for_s: int
    below: bool  # fires under `percent` (availability), not above it
    factor: Decimal  # the burn rate at the threshold
    exhaustion_s: Decimal  # seconds until a whole period's budget is gone at that burn rate
    outage: bool = False  # the fast page on the bad share, not a threshold of the guide's panels

    @property
    def ratio(self) -> Decimal:
        return self.percent / 100

    @property
    def error_ratio(self) -> Decimal:
        """The error ratio at which the alert starts to fire."""
        return 1 - self.ratio if self.below else self.ratio


@dataclass(frozen=True)
class BudgetAlertPlan(_Alert):
    """The "SLA violated" alert: nothing left of the period's error budget."""

    name: str
    for_s: int
    severity: str = "critical"


AlertPlan = BurnAlertPlan | ThresholdAlertPlan | BudgetAlertPlan


@dataclass(frozen=True)
class SloPlan:
    service: str
    name: str
    kind: str  # events | raw | availability | error_rate | latency
    description: str
    objective: Decimal  # percent
    period: str
    period_s: int
    group_by: tuple[str, ...]
    labels: dict[str, str]  # on every rule of the SLO: service, slo, file and SLO labels
    sli_windows: tuple[str, ...]  # windows with a recorded error ratio, shortest first
    burn_alerts: tuple[BurnAlertPlan, ...]
    threshold_alerts: tuple[ThresholdAlertPlan, ...]
    budget_alerts: tuple[BudgetAlertPlan, ...]  # none, or the one budget-exhausted alert
    outage_alerts: tuple[ThresholdAlertPlan, ...]  # none, or the one fast page on the 5m bad share
    runbook_base_url: str
    scrape_s: int  # how often Prometheus scrapes the SLI's series: the fast page's test runs at it
    dashboard_url: str | None  # the service's generated dashboard, when the file has one
    # The SLI as the spec states it, for people and test traffic: the latency bound, the
    # shortcut's selector, the user's own queries as written (role -> query).
    threshold_ms: Decimal | None
    traffic_selector: str
    user_queries: tuple[tuple[str, str], ...]
    # The error ratio straight from the raw series, with WINDOW where the range goes.
    source_query: str
    runbook_text: dict[str, str | None]  # the spec's runbook block: meaning, impact, diagnosis, mitigation
    # The SLI's threshold levels as stated (severity -> percent, in the measure's own terms), whether
    # or not their alerts are enabled: the dashboard's panel bands.
    levels: tuple[tuple[str, Decimal], ...] = ()
    # The recorded rates the error ratio divides: bad / total, or (total - good) / total
    # for latency. None of them for a raw SLI, whose ratio is the user's own query.
    total: Signal | None = None
    bad: Signal | None = None
    good: Signal | None = None
    # Alert names SLOs of other services use too (Sloth allows it: their service and slo labels
    # tell the alerts apart); each SLO's alert of such a name has a runbook page of its own.
    shared_alerts: frozenset[str] = frozenset()
    # `compatibility: sloth`: Sloth's labels on every series, Sloth's window names, the info metric.
    sloth: bool = False
    spec_version: str = "modelmon/v1"
    # The labels Sloth's info_labels plugin puts on the info metric; with them the SLO has that
    # metric whether or not it is Sloth-compatible otherwise.
    info_plugin_labels: dict[str, str] | None = None
    # Sloth's rule_intervals plugin: the intervals of the SLO's own groups (its short-window
    # ratios then get a group of their own); None: every group at its usual interval.
    intervals: sloth.RuleIntervals | None = None
    # The SLI's own queries are MetricsQL (Sloth's validate_victoria_metrics plugin): vmalert checks
    # them, and the generated tests load the rules with a stand-in for each (rules.STAND_IN).
    metricsql: bool = False

    def runbook_page(self, alert: str) -> str:
        """Where the runbook of this SLO's alert `alert` stands, under the runbook site's root."""
        return f"{alert}/{self.service}/{self.name}" if alert in self.shared_alerts else alert

    @property
    def budget(self) -> Decimal:
        return (100 - self.objective) / 100

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / 100

    @property
    def selector(self) -> str:
        return slo_selector(self.service, self.name)

    def sli_record(self, window: str) -> str:
        return sli_error_record(self.window_name(window))

    def window_name(self, window: str) -> str:
        """How a window is spelt in record names: as modelmon writes durations (28d), or as
        Prometheus and Sloth do (4w) for a Sloth-compatible SLO."""
        return prometheus_duration(parse_duration(window)) if self.sloth else window

    def window_labels(self, window: str) -> dict[str, str]:
        """The labels saying which window a series is over: Sloth's sloth_window, when compatible.
        On the error ratios and the burn rates read from them, as Sloth writes them."""
        return {SLOTH_WINDOW_LABEL: self.window_name(window)} if self.sloth else {}

    def without_window(self, expr: str) -> str:
        """`expr` without the window label: an alert compares windows, and says none of them."""
        return f"max without ({SLOTH_WINDOW_LABEL}) ({expr})" if self.sloth else expr

    @property
    def info_labels(self) -> dict[str, str] | None:
        """The labels of the SLO's sloth_slo_info series (Sloth's metadata), None when it has none."""
        if not self.sloth and self.info_plugin_labels is None:
            return None
        return {
            **self.labels,
            SLOTH_MODE_LABEL: SLOTH_MODE,
            SLOTH_OBJECTIVE_LABEL: number(self.objective),
            SLOTH_SPEC_LABEL: self.spec_version,
            SLOTH_VERSION_LABEL: SLOTH_NAMES_VERSION,
            **(self.info_plugin_labels or {}),
        }

    def alert_names(self) -> list[str]:
        return list(dict.fromkeys(a.name for a in self.alerts()))

    def alerts(self) -> tuple[AlertPlan, ...]:
        return (*self.burn_alerts, *self.outage_alerts, *self.threshold_alerts, *self.budget_alerts)

    @property
    def coverage_clock(self) -> tuple[str, str] | None:
        """(record, selector) of the clock whose oldest tile in the period gives the coverage;
        None when the period is short enough to be read from raw counters (no tiles)."""
        if not is_derived(self.period_s):
            return None
        if self.total is None:
            return clock_record(self.ratio_tile), self.selector
        return self.total.clock, matchers(dict(self.total.read_labels))

    def runbook_url(self, alert: str, labels: dict[str, str] | None = None) -> str:
        """The alert's runbook page, with `labels` (name -> value, Go templates allowed) as query
        parameters: the page's script fills them into its queries and links."""
        params = "&".join(f"{name}={value}" for name, value in (labels or {}).items())
        return f"{self.runbook_base_url.rstrip('/')}/{self.runbook_page(alert)}/" + (f"?{params}" if params else "")

    def dashboard_link(self, model: str | None = None, panel: int | None = None) -> str | None:
        """The dashboard, with a model preselected and a panel opened when given (Go templates allowed)."""
        if self.dashboard_url is None:
            return None
        params = [f"var-model={model}"] if model else []
        params += [f"viewPanel={panel}"] if panel else []
        return self.dashboard_url + (f"?{'&'.join(params)}" if params else "")

    def links(self, alert_name: str) -> dict[str, str]:
        """The runbook with the alert's group labels filled in, and the dashboard with its model selected.

        Label values are URL-escaped with Go's urlquery: model names may hold '+', '/', '@' or spaces.
        """
        values = {label: f"{{{{ $labels.{label} | urlquery }}}}" for label in self.group_by}
        found = {"runbook_url": self.runbook_url(alert_name, values)}
        dashboard = self.dashboard_link(model=values.get(contract.MODEL_LABEL))
        if dashboard is not None:
            found["dashboard_url"] = dashboard
        return found

    @property
    def windows(self) -> tuple[str, ...]:
        """Every window with a recorded error ratio (the alerts', the panels' and the period), shortest first."""
        found = {parse_duration(w): w for w in (*self.sli_windows, self.period)}
        return tuple(found[s] for s in sorted(found))

    @property
    def raw_windows(self) -> tuple[str, ...]:
        return tuple(w for w in self.windows if not is_derived(parse_duration(w)))

    @property
    def derived_windows(self) -> tuple[str, ...]:
        return tuple(w for w in self.windows if is_derived(parse_duration(w)))

    @property
    def signals(self) -> tuple[Signal, ...]:
        """The rates this SLO reads, each after the one its guard reads."""
        return tuple(s for s in (self.total, self.bad, self.good) if s is not None)

    @property
    def strip_labels(self) -> dict[str, str]:
        """Labels of the rates an SLO's series must not carry: a rule label set to "" removes it.
        The window label too, which a raw SLI's coverage would take from the 5m ratio it counts."""
        found = {SELECTOR_LABEL: ""} if self.total is not None and SELECTOR_LABEL in dict(self.total.labels) else {}
        return {**found, SLOTH_WINDOW_LABEL: ""} if self.sloth else found

    @property
    def ratio_tile(self) -> str:
        """A raw SLI's 5m ratio recorded every 5 minutes: what its long windows average."""
        return ratio_tile_record(self.sloth)

    @property
    def ratio_tile_labels(self) -> dict[str, str]:
        """The labels of that tile and its clock, live or backfilled: the 5m ratio's."""
        return {**self.labels, **self.window_labels(TILE_WINDOW)}

    def ratio_expr(self, window: str) -> str:
        """This SLO's error ratio over `window`, as the rules compute it from recorded rates."""
        if self.total is None:
            if is_derived(parse_duration(window)):
                # No event counts to add up: a raw SLI's long windows average its 5m ratio, as Sloth does.
                return f"avg_over_time({self.ratio_tile}{self.selector}[{window}])"
            return self.error_ratio_expr(window)
        if not self.total.shared and is_derived(parse_duration(window)):
            # Sums, not averages: an error query with no result (no error yet) leaves tiles out,
            # and a missing tile must count as 0 errors, not shrink the error average's count.
            bad = f"sum_over_time({self.bad.read(self.bad.tile)}[{window}])"
            total = f"sum_over_time({self.total.read(self.total.tile)}[{window}])"
            return f"{bad}\n/\n(\n  {total} > 0\n)"
        total = self.total.read(self.total.rate(window))
        if self.good is not None:
            good = self.good.read(self.good.rate(window))
            return f"(\n  {total}\n  - ignoring (le)\n  {good}\n)\n/\n(\n  {total} > 0\n)"
        bad = self.bad.read(self.bad.rate(window))
        # `> 0` turns a window without traffic into no sample instead of NaN,
        # so 0/0 never alerts and never poisons a long window.
        return f"{bad}\n/\n(\n  {total} > 0\n)"

    def error_ratio_expr(self, window: str) -> str:
        """This SLO's error ratio over `window` straight from the raw series: what a person pastes."""
        return self.source_query.replace(WINDOW, window)

    @property
    def failover_window(self) -> str:
        """The window "which models are healthy" reads: the shortest recorded one of an hour or
        more (the fast page's long window by default), else the longest recorded one."""
        return next((w for w in self.windows if parse_duration(w) >= 3600), self.windows[-1])


def plan_file(spec: SloFile, shared: frozenset[str] = frozenset()) -> list[SloPlan]:
    selected = _selected_records(spec)
    return [plan_slo(spec, slo, selected, shared) for slo in spec.slos]


# The guide's metrics each shortcut SLI reads, by role.
SHORTCUT_METRICS = {
    "availability": {"total": contract.REQUESTS_TOTAL, "bad": contract.ERRORS_TOTAL},
    "error_rate": {"total": contract.REQUESTS_TOTAL, "bad": contract.ERRORS_TOTAL},
    "latency": {"total": contract.LATENCY_MS_COUNT, "good": contract.LATENCY_MS_BUCKET},
}


def _selected_records(spec: SloFile) -> set[str]:
    """Shared rate records some SLO of the file reads with a selector."""
    found = set()
    for slo in spec.slos:
        kind = sli_kind(slo)
        block = getattr(slo.sli, kind)
        if kind in SHORTCUT_METRICS and block.selector:
            found.update(record_level(tuple(block.group_by), m) for m in SHORTCUT_METRICS[kind].values())
    return found


def _signals(spec: SloFile, slo: Slo, labels: dict[str, str], selected: set[str]) -> dict[str, Signal]:
    kind = sli_kind(slo)
    block = getattr(slo.sli, kind)
    if kind == "events":
        own = ((SERVICE_LABEL, spec.service), (SLO_LABEL, slo.name))
        total, bad = (
            Signal(
                record=events_record(role),
                query=WINDOW_PLACEHOLDER.sub(WINDOW, query.strip()),
                labels=tuple(labels.items()),
                read_labels=own,
                by=(),
                shared=False,
            )
            for role, query in (("total", block.total_query), ("error", block.error_query))
        )
        return {"total": total, "bad": bad}
    if kind not in SHORTCUT_METRICS:
        return {}
    by = tuple(block.group_by)
    selector = traffic_selector(slo)
    shared = {SERVICE_LABEL: spec.service, **spec.labels}
    # Marked whenever the file also reads these metrics with another selector, so each read is exact.
    marked = bool(selector) or record_level(by, SHORTCUT_METRICS[kind]["total"]) in selected
    if marked:
        shared[SELECTOR_LABEL] = selector
    le = contract.le_label(float(block.threshold_ms)) if kind == "latency" else None
    found: dict[str, Signal] = {}
    for role, metric in SHORTCUT_METRICS[kind].items():
        extra = {"le": le} if role == "good" else {}
        read = {SERVICE_LABEL: spec.service, **({SELECTOR_LABEL: selector} if marked else {}), **extra}
        matched = ",".join(m for m in (selector, f'le="{le}"' if extra else "") if m)
        in_by = f" by ({', '.join(by)})" if by else ""
        found[role] = Signal(
            record=record_level(by, metric),
            query=f"sum{in_by} (rate({metric}{'{' + matched + '}' if matched else ''}[{WINDOW}]))",
            labels=tuple({k: v for k, v in {**shared, **extra}.items() if v}.items()),
            read_labels=tuple(read.items()),
            by=by,
            guard=found["total"] if role == "bad" else None,
        )
    return found


def traffic_selector(slo: Slo) -> str:
    """A shortcut SLI's selector as PromQL takes it inside braces ("" for none, or another SLI)."""
    return (getattr(getattr(slo.sli, sli_kind(slo)), "selector", None) or "").strip().rstrip(",")


def sli_kind(slo: Slo) -> str:
    return slo.sli.kinds()[0]


def group_by(slo: Slo) -> tuple[str, ...]:
    block = getattr(slo.sli, sli_kind(slo))
    return tuple(block.group_by)


def plan_slo(spec: SloFile, slo: Slo, selected: set[str], shared: frozenset[str] = frozenset()) -> SloPlan:
    """One SLO's plan; `selected`: the file's shared records some SLO reads with a selector;
    `shared`: alert names SLOs of other services use too."""
    kind = sli_kind(slo)
    period_s = parse_duration(slo.period)
    prefix = spec.alert_prefix or camel(spec.service)
    alerting = slo.alerting
    burn_name = alerting.name or f"{prefix}{camel(slo.name)}BudgetBurn"
    budget = (100 - slo.objective) / 100

    def lasts(factor: Decimal) -> Decimal:
        """Seconds a whole period's budget lasts when burning at `factor`."""
        return Decimal(period_s) / factor

    burn_alerts = []
    for window in burn_windows(slo):
        long_s, short_s = parse_duration(window.long), parse_duration(window.short)
        factor = Decimal(number(window.budget_percent / 100 * Decimal(period_s) / Decimal(long_s)))
        if (alerting.page_alert if window.severity == "page" else alerting.ticket_alert).disable:
            continue
        if slo.alerting.windows is None and factor * budget >= 1:
            # A default pair no outage can reach at this objective (the 1h/5m page under 93.06 %):
            # left out, where Sloth writes an alert that never fires. Windows the spec sets are checked.
            continue
        burn_alerts.append(
            BurnAlertPlan(
                name=burn_name,
                severity=SEVERITY[window.severity],
                kind=window.severity,
                long=format_duration(long_s),
                short=format_duration(short_s),
                long_s=long_s,
                short_s=short_s,
                for_s=parse_duration(window.for_),
                budget_percent=window.budget_percent,
                factor=factor,
                threshold=Decimal(number(factor * budget)),
                exhaustion_s=lasts(factor),
            )
        )

    def threshold_alert(name: str, severity: str, measure: str, percent: Decimal, for_: str, outage: bool):
        below = measure == "availability"
        factor = Decimal(number((1 - percent / 100 if below else percent / 100) / budget))
        return ThresholdAlertPlan(
            name, severity, measure, percent, parse_duration(for_), below, factor, lasts(factor), outage=outage
        )

    threshold_alerts, levels = [], ()
    threshold = alerting.threshold_alert
    if kind in ("availability", "error_rate"):
        block = getattr(slo.sli, kind)
        measure = "availability" if kind == "availability" else "error rate"
        suffix = "Low" if kind == "availability" else "High"
        name = threshold.name or f"{prefix}{camel(slo.name)}{suffix}"
        levels = (
            (("warning", block.warning_below), ("critical", block.critical_below))
            if kind == "availability"
            else (("warning", block.warning_above), ("critical", block.critical_above))
        )
        levels = tuple((severity, level) for severity, level in levels if level is not None)
        if not threshold.disable:
            threshold_alerts = [
                threshold_alert(name, severity, measure, level, threshold.for_, outage=False)
                for severity, level in levels
            ]

    # Sloth's error_budget_exhausted_alert plugin stands for the budget_alert block, texts included.
    if (plugin := sloth.budget_alert(spec.slo_plugins, slo.plugins)) is not None:
        alerting = alerting.model_copy(update={"budget_alert": plugin})
    budget_block = alerting.budget_alert
    budget_alerts = (
        ()
        if alerting.disabled(budget_block)
        else (
            BudgetAlertPlan(
                budget_block.name or f"{prefix}{camel(slo.name)}BudgetExhausted", parse_duration(budget_block.for_)
            ),
        )
    )
    outage = alerting.outage_alert
    outage_alerts = (
        ()
        if alerting.disabled(outage)
        else (
            threshold_alert(
                outage.name or f"{prefix}{camel(slo.name)}Outage",
                "critical",
                OUTAGE_MEASURE.get(kind, "bad events"),
                outage.above,
                outage.for_,
                outage=True,
            ),
        )
    )

    windows = {parse_duration(SHORT_WINDOW)}
    for alert in burn_alerts:
        windows.update((alert.long_s, alert.short_s))
    compatible = spec.compatibility == "sloth"
    if compatible:  # as Sloth: every window of the set, whether or not its alert is on
        windows.update(parse_duration(w) for window in burn_windows(slo) for w in (window.long, window.short))
    labels = {SERVICE_LABEL: spec.service, SLO_LABEL: slo.name}
    if compatible:
        labels |= {SLOTH_ID_LABEL: sloth_id(spec.service, slo.name), SLOTH_SERVICE_LABEL: spec.service}
        labels[SLOTH_SLO_LABEL] = slo.name
    labels |= {**spec.labels, **slo.labels}
    threshold_ms = slo.sli.latency.threshold_ms if kind == "latency" else None
    plan = SloPlan(
        service=spec.service,
        name=slo.name,
        kind=kind,
        description=slo.description,
        objective=slo.objective,
        period=format_duration(period_s),
        period_s=period_s,
        group_by=group_by(slo),
        labels=labels,
        sli_windows=tuple(format_duration(w) for w in sorted(windows)),
        burn_alerts=tuple(burn_alerts),
        threshold_alerts=tuple(threshold_alerts),
        budget_alerts=budget_alerts,
        outage_alerts=outage_alerts,
        runbook_base_url=spec.runbook_base_url,
        scrape_s=parse_duration(spec.scrape_interval),
        dashboard_url=f"{spec.grafana_url.rstrip('/')}/d/{spec.dashboard.uid}" if spec.dashboard else None,
        threshold_ms=threshold_ms,
        traffic_selector=traffic_selector(slo),
        user_queries=_user_queries(slo),
        source_query=_source_query(slo, kind, group_by(slo), threshold_ms),
        runbook_text=slo.runbook.model_dump(),
        levels=levels,
        sloth=compatible,
        # A file whose version was refused is still planned, for the checks of its other fields.
        spec_version=spec._form or getattr(spec, "version", "modelmon/v1"),
        info_plugin_labels=sloth.info_labels(spec.slo_plugins, slo.plugins),
        intervals=sloth.rule_intervals(spec.slo_plugins, slo.plugins),
        metricsql=sloth.metricsql(spec.slo_plugins, slo.plugins),
        **_signals(spec, slo, labels, selected),
    )
    plan = replace(plan, shared_alerts=shared & set(plan.alert_names()))
    return _with_alert_texts(plan, alerting)


def _with_alert_texts(plan: SloPlan, alerting) -> SloPlan:
    """Each alert's labels and annotations as its rule carries them: modelmon's, then the SLO's
    `alerting.labels` / `annotations`, then the alert's own overrides (the last word wins)."""

    def finish(alert: AlertPlan, overrides, text: str, extra: dict[str, str]) -> AlertPlan:
        labels = {SEVERITY_LABEL: alert.severity, **extra, **alerting.labels, **overrides.labels}
        annotations = {
            "summary": alert_text(f"{text}_summary", plan, alert),
            "description": alert_text(f"{text}_description", plan, alert),
            **plan.links(alert.name),
            **alerting.annotations,
            **overrides.annotations,
        }
        return replace(alert, labels=labels, annotations=annotations)

    return replace(
        plan,
        burn_alerts=tuple(
            finish(
                a,
                alerting.page_alert if a.kind == "page" else alerting.ticket_alert,
                "burn",
                {
                    LONG_WINDOW_LABEL: a.long,
                    SHORT_WINDOW_LABEL: a.short,
                    **({SLOTH_SEVERITY_LABEL: a.kind} if plan.sloth else {}),
                },
            )
            for a in plan.burn_alerts
        ),
        outage_alerts=tuple(
            finish(a, alerting.outage_alert, "outage", {SLOTH_SEVERITY_LABEL: "page"} if plan.sloth else {})
            for a in plan.outage_alerts
        ),
        threshold_alerts=tuple(finish(a, alerting.threshold_alert, "threshold", {}) for a in plan.threshold_alerts),
        budget_alerts=tuple(finish(a, alerting.budget_alert, "budget", {}) for a in plan.budget_alerts),
    )


def _user_queries(slo: Slo) -> tuple[tuple[str, str], ...]:
    if slo.sli.events is not None:
        return (("errors", slo.sli.events.error_query.strip()), ("total", slo.sli.events.total_query.strip()))
    if slo.sli.raw is not None:
        return (("error ratio", slo.sli.raw.error_ratio_query.strip()),)
    return ()


def _source_query(slo: Slo, kind: str, by: tuple[str, ...], threshold_ms: Decimal | None) -> str:
    """The SLO's error ratio straight from the raw series, with WINDOW where the range goes."""
    sli = slo.sli
    if kind == "events":
        error = WINDOW_PLACEHOLDER.sub(WINDOW, sli.events.error_query.strip())
        total = WINDOW_PLACEHOLDER.sub(WINDOW, sli.events.total_query.strip())
        # `> 0` turns a window without traffic into no sample instead of NaN, so 0/0 never alerts.
        return f"(\n  {error}\n)\n/\n(\n  ({total}) > 0\n)"
    if kind == "raw":
        return f"(\n  {WINDOW_PLACEHOLDER.sub(WINDOW, sli.raw.error_ratio_query.strip())}\n)"

    def sum_rate(metric: str, extra: str = "") -> str:
        found = [m for m in (traffic_selector(slo), extra) if m]
        selector = "{" + ",".join(found) + "}" if found else ""
        in_by = f" by ({', '.join(by)})" if by else ""
        return f"sum{in_by} (rate({metric}{selector}[{WINDOW}]))"

    if kind == "latency":
        count = sum_rate(contract.LATENCY_MS_COUNT)
        fast = sum_rate(contract.LATENCY_MS_BUCKET, f'le="{contract.le_label(float(threshold_ms))}"')
        return f"(\n  {count}\n  -\n  {fast}\n)\n/\n(\n  {count} > 0\n)"
    requests, errors = sum_rate(contract.REQUESTS_TOTAL), sum_rate(contract.ERRORS_TOTAL)
    # A model that never failed may have no error series at all: `or 0 * requests`
    # gives it an explicit 0 instead of dropping the model from the ratio.
    return f"(\n  {errors}\n  or\n  0 * {requests}\n)\n/\n(\n  {requests} > 0\n)"


# What the outage alert's share counts, in the SLI's own words.
OUTAGE_MEASURE = {"availability": "error rate", "error_rate": "error rate", "latency": "slow calls"}


def burn_windows(slo: Slo):
    """The SLO's burn-rate windows: its own, or the SRE workbook defaults."""
    return slo.alerting.windows or DEFAULT_WINDOWS


# --- Services and the project ----------------------------------------------------------

# The guide's panels, in the order the dashboard draws them (the family gauges go between
# the fourth and the fifth). Runbooks link to them by id, which is their place in this order.
THROUGHPUT_PANEL = "Model Request Throughput"
LATENCY_PANEL = "Model Average Latency"
ERROR_RATE_PANEL = "Model Error Rate"
TOKENS_PANEL = "Model Token Usage Rate"
HOURLY_PANEL = "Hourly Request Distribution"
AVAILABILITY_PANEL = "Model Availability"
GUIDE_PANELS_FIRST = (THROUGHPUT_PANEL, LATENCY_PANEL, ERROR_RATE_PANEL, TOKENS_PANEL)
GUIDE_PANELS_LAST = (HOURLY_PANEL, AVAILABILITY_PANEL)


def family_panel(family: str) -> str:
    return f"{family} Models %"


@dataclass(frozen=True)
class SloPanels:
    """The titles of one SLO's dashboard row and its panels, in the order they are drawn."""

    row: str
    sli: str
    budget: str
    coverage: str
    burn: str

    @classmethod
    def of(cls, plan: SloPlan) -> SloPanels:
        return cls(
            row=f"SLO {plan.name}: {number(plan.objective)}% over {plan.period}",
            sli=f"{plan.name}: SLI against objective",
            budget=f"{plan.name}: error budget remaining ({plan.period})",
            coverage=f"{plan.name}: data coverage ({plan.period})",
            burn=f"{plan.name}: burn rate",
        )

    @property
    def titles(self) -> tuple[str, ...]:
        return (self.row, self.sli, self.budget, self.coverage, self.burn)


@dataclass(frozen=True)
class Band:
    """A panel's threshold steps in the measure's own terms (percent); None: that step is not drawn."""

    warning: Decimal | None
    critical: Decimal | None


@dataclass(frozen=True)
class DashboardPlan:
    uid: str
    title: str
    families: tuple[tuple[str, str], ...]  # (name, model regex) of each share gauge
    family_yellow_from: Decimal
    family_green_from: Decimal
    # The error-rate and availability panels' steps: the levels of the file's first SLO of that
    # measure (its threshold alerts fire exactly there), else the guide's.
    error_band: Band
    availability_band: Band
    panels: tuple[str, ...]  # every panel title, rows included, in the order drawn: id = place + 1

    def panel_id(self, title: str) -> int:
        return self.panels.index(title) + 1


@dataclass(frozen=True)
class ServicePlan:
    """One spec file: its SLOs and everything the service's outputs share."""

    service: str
    source: str  # the spec file as the user names it, for headers and errors
    slos: tuple[SloPlan, ...]
    families: tuple[tuple[str, str], ...]  # the model families runbooks name: the dashboard's, else the guide's
    dashboard: DashboardPlan | None
    notifications: Notifications | None  # receivers and routes as the spec states them
    group_labels: tuple[str, ...]  # every label some SLO of the file is grouped by, in first use
    # What one notification of the service groups by: the spec's choice, else alert name, SLO and
    # every grouping label (an alert without one of them groups as if it were empty, so the union
    # keeps every SLO's groups apart).
    notification_group_by: tuple[str, ...] = ()

    def alert_names(self) -> set[str]:
        return {name for slo in self.slos for name in slo.alert_names()}

    @property
    def slo_names(self) -> list[str]:
        return [s.name for s in self.slos]

    @property
    def rule_groups(self) -> tuple[str, ...]:
        """The rule file's groups in evaluation order: rates and ratios (an SLO with intervals of its
        own: its ratios in a group of their own) before the tiles that keep them, the long windows,
        then each SLO's metadata and alerts (a group with no rule is not written)."""
        derived = any(slo.derived_windows for slo in self.slos)
        # The shared group holds the rates, and the ratios of SLOs without intervals of their own:
        # raw SLIs with the rule_intervals plugin alone leave it empty.
        shared = any(slo.total is not None or (not slo.intervals and slo.raw_windows) for slo in self.slos)
        found = [sli_group(self.service)] if shared else []
        found += [slo_sli_group(self.service, slo.name) for slo in self.slos if slo.intervals and slo.raw_windows]
        found += [tiles_group(self.service), long_group(self.service)] if derived else []
        for slo in self.slos:
            found.append(meta_group(self.service, slo.name))
            found += [alerts_group(self.service, slo.name)] if slo.alerts() else []
        return tuple(found)


@dataclass(frozen=True)
class ProjectPlan:
    services: tuple[ServicePlan, ...]  # in spec-file order

    @property
    def sources(self) -> list[str]:
        return [s.source for s in self.services]

    @property
    def group_labels(self) -> tuple[str, ...]:
        """Every label some SLO of any file is grouped by, in services' name order."""
        found: dict[str, None] = {}
        for service in sorted(self.services, key=lambda s: s.service):
            found.update(dict.fromkeys(service.group_labels))
        return tuple(found)


def plan_service(spec: SloFile, source: str, shared: frozenset[str] = frozenset()) -> ServicePlan:
    slos = tuple(plan_file(spec, shared))
    families = tuple(
        (f.name, f.pattern)
        for f in (spec.dashboard.families if spec.dashboard else map(Family.model_validate, DEFAULT_FAMILIES))
    )
    labels: dict[str, None] = {}
    for slo in slos:
        labels.update(dict.fromkeys(slo.group_by))
    return ServicePlan(
        service=spec.service,
        source=source,
        slos=slos,
        families=families,
        dashboard=_dashboard_plan(spec, slos, families),
        notifications=spec.notifications,
        group_labels=tuple(labels),
        notification_group_by=tuple(
            spec.notifications.group_by
            if spec.notifications is not None and spec.notifications.group_by is not None
            else (ALERTNAME_LABEL, SERVICE_LABEL, SLO_LABEL, *labels)
        ),
    )


def plan_project(specs: list[tuple[SloFile, str]]) -> ProjectPlan:
    """Every file's plan, computed once: the only input of every output."""
    return with_shared_alert_names([(spec, source, plan_service(spec, source)) for spec, source in specs])


def with_shared_alert_names(planned: list[tuple[SloFile, str, ServicePlan]]) -> ProjectPlan:
    """The project of the services planned, those whose alert names other SLOs use too (of
    another service, or of the same) planned again so that each SLO's alert of a shared name
    links to its own runbook page."""
    owners = Counter(name for _, _, service in planned for slo in service.slos for name in slo.alert_names())
    shared = frozenset(name for name, count in owners.items() if count > 1)
    return ProjectPlan(
        tuple(
            plan_service(spec, source, shared) if shared & service.alert_names() else service
            for spec, source, service in planned
        )
    )


def _band(slos: tuple[SloPlan, ...], kind: str, guide: Band) -> Band:
    found = next((s for s in slos if s.kind == kind), None)
    if found is None:
        return guide
    levels = dict(found.levels)
    return Band(levels.get("warning"), levels.get("critical"))


def _dashboard_plan(spec: SloFile, slos: tuple[SloPlan, ...], families) -> DashboardPlan | None:
    board = spec.dashboard
    if board is None:
        return None
    panels = (
        *GUIDE_PANELS_FIRST,
        *(family_panel(name) for name, _ in families),
        *GUIDE_PANELS_LAST,
        *(title for slo in slos for title in SloPanels.of(slo).titles),
    )
    return DashboardPlan(
        uid=board.uid,
        title=board.title,
        families=families,
        family_yellow_from=board.family_thresholds.yellow_from,
        family_green_from=board.family_thresholds.green_from,
        error_band=_band(slos, "error_rate", Band(*contract.ERROR_RATE_BAND)),
        availability_band=_band(slos, "availability", Band(*contract.AVAILABILITY_BAND)),
        panels=panels,
    )
