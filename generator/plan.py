"""From a validated spec to a plan: every number and expression the outputs need.

Rules, promtool tests (and later dashboards and runbooks) are all written from
these plans, so an objective, a window or a threshold is decided once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext

from generator import contract
from generator.durations import format_duration, parse_duration
from generator.spec import WINDOW_PLACEHOLDER, Slo, SloFile

# The guide's panels read rates over 5m; threshold alerts and the current burn rate
# use the same window so an alert and its panel always show the same number.
THRESHOLD_WINDOW = "5m"
SLI_RECORD = "slo:sli_error:ratio_rate{window}"


@dataclass(frozen=True)
class DefaultWindow:
    severity: str
    long: str
    short: str
    budget_percent: Decimal
    for_: str


# The Google SRE workbook's multi-window multi-burn-rate set (as in Sloth and
# kubernetes-mixin): page when 2% of the budget burns in 1h or 5% in 6h, ticket
# when 10% burns in 1d or 3d. The `for` durations follow kubernetes-mixin's
# burn-rate alerts: long enough to ride out one bad scrape, short next to the window.
DEFAULT_WINDOWS = (
    DefaultWindow("page", "1h", "5m", Decimal(2), "2m"),
    DefaultWindow("page", "6h", "30m", Decimal(5), "15m"),
    DefaultWindow("ticket", "1d", "2h", Decimal(10), "1h"),
    DefaultWindow("ticket", "3d", "6h", Decimal(10), "3h"),
)

SEVERITY = {"page": "critical", "ticket": "warning"}


def number(value: Decimal) -> str:
    """A Decimal as PromQL and YAML read it: 12 significant digits, no exponent, no trailing zeros."""
    with localcontext() as ctx:
        ctx.prec = 12
        rounded = +value
    text = format(rounded.normalize(), "f")
    return text


def percent(ratio: Decimal) -> str:
    """A ratio as a percentage for people: 0.001 -> '0.1%'."""
    return f"{number(ratio * 100)}%"


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^a-zA-Z0-9]+", text) if part)


def hours_text(seconds: Decimal) -> str:
    """A duration for people: '2d2h', '50h' reads worse than '2d 2h'."""
    total_minutes = int((seconds / 60).to_integral_value())
    days, rest = divmod(total_minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or "0m"


@dataclass(frozen=True)
class BurnAlert:
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

    @property
    def for_(self) -> str:
        return format_duration(self.for_s)

    @property
    def window_label(self) -> str:
        return f"{self.long}/{self.short}"

    def exhaustion_s(self, period_s: int) -> Decimal:
        """Seconds until a full period's budget is gone when burning exactly at the factor."""
        return Decimal(period_s) / self.factor


@dataclass(frozen=True)
class ThresholdAlert:
    """A threshold alert on the 5m error ratio (error rate above, or availability below)."""

    name: str
    severity: str
    measure: str  # "error rate" | "availability"
    percent: Decimal  # the spec's number, in the measure's own terms
    for_s: int

    @property
    def for_(self) -> str:
        return format_duration(self.for_s)

    @property
    def ratio(self) -> Decimal:
        return self.percent / 100

    @property
    def error_ratio(self) -> Decimal:
        """The error ratio at which the alert starts to fire."""
        return self.ratio if self.measure == "error rate" else 1 - self.ratio


@dataclass(frozen=True)
class BudgetAlert:
    """The "SLA violated" alert: nothing left of the period's error budget."""

    name: str
    for_s: int
    severity: str = "critical"

    @property
    def for_(self) -> str:
        return format_duration(self.for_s)


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
    burn_alerts: tuple[BurnAlert, ...]
    threshold_alerts: tuple[ThresholdAlert, ...]
    budget_alerts: tuple[BudgetAlert, ...]  # none, or the one budget-exhausted alert
    alert_labels: dict[str, str]  # spec's alerting.labels
    alert_annotations: dict[str, str]
    page_overrides: tuple[dict[str, str], dict[str, str]]
    ticket_overrides: tuple[dict[str, str], dict[str, str]]
    threshold_overrides: tuple[dict[str, str], dict[str, str]]
    budget_overrides: tuple[dict[str, str], dict[str, str]]
    runbook_base_url: str
    dashboard_url: str | None  # the service's generated dashboard, when the file has one
    spec: Slo

    @property
    def budget(self) -> Decimal:
        return (100 - self.objective) / 100

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / 100

    @property
    def selector(self) -> str:
        return f'{{service="{self.service}",slo="{self.name}"}}'

    def sli_record(self, window: str) -> str:
        return SLI_RECORD.format(window=window)

    def alert_names(self) -> list[str]:
        return list(dict.fromkeys(a.name for a in self.alerts()))

    def alerts(self) -> tuple[BurnAlert | ThresholdAlert | BudgetAlert, ...]:
        return (*self.burn_alerts, *self.threshold_alerts, *self.budget_alerts)

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alert}/"

    def dashboard_link(self, model: str | None = None, panel: int | None = None) -> str | None:
        """The dashboard, with a model preselected and a panel opened when given (Go templates allowed)."""
        if self.dashboard_url is None:
            return None
        params = [f"var-model={model}"] if model else []
        params += [f"viewPanel={panel}"] if panel else []
        return self.dashboard_url + (f"?{'&'.join(params)}" if params else "")

    def error_ratio_expr(self, window: str) -> str:
        """The PromQL of this SLO's error ratio over `window`."""
        sli = self.spec.sli
        if sli.events is not None:
            error = WINDOW_PLACEHOLDER.sub(window, sli.events.error_query.strip())
            total = WINDOW_PLACEHOLDER.sub(window, sli.events.total_query.strip())
            # `> 0` turns a window without traffic into no sample instead of NaN,
            # so 0/0 never alerts and never poisons the period average.
            return f"(\n  {error}\n)\n/\n(\n  ({total}) > 0\n)"
        if sli.raw is not None:
            return f"(\n  {WINDOW_PLACEHOLDER.sub(window, sli.raw.error_ratio_query.strip())}\n)"
        if sli.latency is not None:
            le = contract.le_label(float(sli.latency.threshold_ms))
            count = self._sum_rate(contract.LATENCY_MS_COUNT, window)
            fast = self._sum_rate(contract.LATENCY_MS_BUCKET, window, f'le="{le}"')
            return f"(\n  {count}\n  -\n  {fast}\n)\n/\n(\n  {count} > 0\n)"
        requests = self._sum_rate(contract.REQUESTS_TOTAL, window)
        errors = self._sum_rate(contract.ERRORS_TOTAL, window)
        # A model that never failed may have no error series at all: `or 0 * requests`
        # gives it an explicit 0 instead of dropping the model from the ratio.
        return f"(\n  {errors}\n  or\n  0 * {requests}\n)\n/\n(\n  {requests} > 0\n)"

    def _sum_rate(self, metric: str, window: str, extra: str = "") -> str:
        traffic = self.spec.sli.availability or self.spec.sli.error_rate or self.spec.sli.latency
        matchers = [m for m in (traffic.selector, extra) if m]
        selector = "{" + ",".join(m.strip().rstrip(",") for m in matchers) + "}" if matchers else ""
        by = f" by ({', '.join(self.group_by)})" if self.group_by else ""
        return f"sum{by} (rate({metric}{selector}[{window}]))"


def plan_file(spec: SloFile) -> list[SloPlan]:
    return [plan_slo(spec, slo) for slo in spec.slos]


def sli_kind(slo: Slo) -> str:
    return slo.sli.kinds()[0]


def group_by(slo: Slo) -> tuple[str, ...]:
    block = getattr(slo.sli, sli_kind(slo))
    return tuple(block.group_by)


def plan_slo(spec: SloFile, slo: Slo) -> SloPlan:
    kind = sli_kind(slo)
    period_s = parse_duration(slo.period)
    prefix = spec.alert_prefix or camel(spec.service)
    alerting = slo.alerting
    burn_name = alerting.name or f"{prefix}{camel(slo.name)}BudgetBurn"
    budget = (100 - slo.objective) / 100

    burn_alerts = []
    for window in burn_windows(slo):
        long_s, short_s = parse_duration(window.long), parse_duration(window.short)
        factor = window.budget_percent / 100 * Decimal(period_s) / Decimal(long_s)
        overrides = alerting.page_alert if window.severity == "page" else alerting.ticket_alert
        if overrides.disable:
            continue
        burn_alerts.append(
            BurnAlert(
                name=burn_name,
                severity=SEVERITY[window.severity],
                kind=window.severity,
                long=format_duration(long_s),
                short=format_duration(short_s),
                long_s=long_s,
                short_s=short_s,
                for_s=parse_duration(window.for_),
                budget_percent=window.budget_percent,
                factor=Decimal(number(factor)),
                threshold=Decimal(number(Decimal(number(factor)) * budget)),
            )
        )

    threshold_alerts = []
    threshold = alerting.threshold_alert
    if not threshold.disable and kind in ("availability", "error_rate"):
        block = getattr(slo.sli, kind)
        measure = "availability" if kind == "availability" else "error rate"
        suffix = "Low" if kind == "availability" else "High"
        name = threshold.name or f"{prefix}{camel(slo.name)}{suffix}"
        levels = (
            (("warning", block.warning_below), ("critical", block.critical_below))
            if kind == "availability"
            else (("warning", block.warning_above), ("critical", block.critical_above))
        )
        for severity, percent in levels:
            if percent is not None:
                threshold_alerts.append(
                    ThresholdAlert(name, severity, measure, percent, parse_duration(threshold.for_))
                )

    budget = alerting.budget_alert
    budget_alerts = (
        ()
        if budget.disable
        else (BudgetAlert(budget.name or f"{prefix}{camel(slo.name)}BudgetExhausted", parse_duration(budget.for_)),)
    )

    windows = {parse_duration(THRESHOLD_WINDOW)}
    for alert in burn_alerts:
        windows.update((alert.long_s, alert.short_s))
    labels = {"service": spec.service, "slo": slo.name, **spec.labels, **slo.labels}

    return SloPlan(
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
        alert_labels=dict(alerting.labels),
        alert_annotations=dict(alerting.annotations),
        page_overrides=(dict(alerting.page_alert.labels), dict(alerting.page_alert.annotations)),
        ticket_overrides=(dict(alerting.ticket_alert.labels), dict(alerting.ticket_alert.annotations)),
        threshold_overrides=(dict(threshold.labels), dict(threshold.annotations)),
        budget_overrides=(dict(budget.labels), dict(budget.annotations)),
        runbook_base_url=spec.runbook_base_url,
        dashboard_url=f"{spec.grafana_url.rstrip('/')}/d/{spec.dashboard.uid}" if spec.dashboard else None,
        spec=slo,
    )


def burn_windows(slo: Slo):
    """The SLO's burn-rate windows: its own, or the SRE workbook defaults."""
    return slo.alerting.windows or DEFAULT_WINDOWS
