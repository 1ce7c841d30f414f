"""Prometheus recording and alert rules from SLO plans, built as data.

Per SLO three groups, as Sloth lays them out:
- `<service>-<slo>-sli`: the error ratio over every window an alert or panel reads,
  then the period ratio averaged from the 5m ratio (cheap: no 30d raw range query);
- `<service>-<slo>-meta`: objective, budget, burn rates and budget remaining;
- `<service>-<slo>-alerts`: one multi-window burn-rate rule per window pair (labelled
  with the pair, so a notification says which one fired) and the threshold alerts.
"""

from __future__ import annotations

from decimal import Decimal

from generator.plan import THRESHOLD_WINDOW, BudgetAlert, BurnAlert, SloPlan, ThresholdAlert, number
from generator.textgen import alert_text


def rule_groups(plan: SloPlan) -> list[dict]:
    return [
        {"name": f"{plan.service}-{plan.name}-sli", "rules": sli_rules(plan)},
        {"name": f"{plan.service}-{plan.name}-meta", "rules": meta_rules(plan)},
        {"name": f"{plan.service}-{plan.name}-alerts", "rules": alert_rules(plan)},
    ]


def sli_rules(plan: SloPlan) -> list[dict]:
    rules = [
        {"record": plan.sli_record(w), "expr": plan.error_ratio_expr(w) + "\n", "labels": dict(plan.labels)}
        for w in plan.sli_windows
    ]
    base = f"{plan.sli_record(THRESHOLD_WINDOW)}{plan.selector}[{plan.period}]"
    rules.append(
        {
            "record": plan.sli_record(plan.period),
            "expr": f"sum_over_time({base})\n/\ncount_over_time({base})\n",
            "labels": dict(plan.labels),
        }
    )
    return rules


def meta_rules(plan: SloPlan) -> list[dict]:
    budget = number(plan.budget)
    period_ratio = f"{plan.sli_record(plan.period)}{plan.selector}"
    current = f"{plan.sli_record(THRESHOLD_WINDOW)}{plan.selector}"
    records = [
        ("slo:objective:ratio", f"vector({number(plan.objective_ratio)})"),
        ("slo:error_budget:ratio", f"vector({budget})"),
        ("slo:time_period:days", f"vector({number(Decimal(plan.period_s) / 86400)})"),
        ("slo:current_burn_rate:ratio", f"{current} / {budget}"),
        ("slo:period_burn_rate:ratio", f"{period_ratio} / {budget}"),
        ("slo:period_error_budget_remaining:ratio", f"1 - {period_ratio} / {budget}"),
    ]
    return [{"record": name, "expr": expr, "labels": dict(plan.labels)} for name, expr in records]


def alert_rules(plan: SloPlan) -> list[dict]:
    return [alert_rule(plan, a) for a in plan.alerts()]


def alert_rule(plan: SloPlan, alert: BurnAlert | ThresholdAlert | BudgetAlert) -> dict:
    if isinstance(alert, BurnAlert):
        return burn_rule(plan, alert)
    if isinstance(alert, ThresholdAlert):
        return threshold_rule(plan, alert)
    return budget_rule(plan, alert)


def links(plan: SloPlan, alert_name: str) -> dict[str, str]:
    """The runbook, and the dashboard with the alert's model selected when there is one."""
    found = {"runbook_url": plan.runbook_url(alert_name)}
    model = "{{ $labels.model }}" if "model" in plan.group_by else None
    dashboard = plan.dashboard_link(model=model)
    if dashboard is not None:
        found["dashboard_url"] = dashboard
    return found


def budget_rule(plan: SloPlan, alert: BudgetAlert) -> dict:
    labels, annotations = plan.budget_overrides
    return {
        "alert": alert.name,
        "expr": f"slo:period_error_budget_remaining:ratio{plan.selector} <= 0\n",
        "for": alert.for_,
        "labels": {"severity": alert.severity, **plan.alert_labels, **labels},
        "annotations": {
            "summary": alert_text("budget_summary", plan, alert),
            "description": alert_text("budget_description", plan, alert),
            **links(plan, alert.name),
            **plan.alert_annotations,
            **annotations,
        },
    }


def burn_rule(plan: SloPlan, alert: BurnAlert) -> dict:
    threshold = number(alert.threshold)
    long = f"{plan.sli_record(alert.long)}{plan.selector}"
    short = f"{plan.sli_record(alert.short)}{plan.selector}"
    overrides = plan.page_overrides if alert.kind == "page" else plan.ticket_overrides
    return {
        "alert": alert.name,
        "expr": f"(\n  {long} > {threshold}\n)\nand\n(\n  {short} > {threshold}\n)\n",
        "for": alert.for_,
        "labels": {
            "severity": alert.severity,
            "long_window": alert.long,
            "short_window": alert.short,
            **plan.alert_labels,
            **overrides[0],
        },
        "annotations": {
            "summary": alert_text("burn_summary", plan, alert),
            "description": alert_text("burn_description", plan, alert),
            **links(plan, alert.name),
            **plan.alert_annotations,
            **overrides[1],
        },
    }


def threshold_rule(plan: SloPlan, alert: ThresholdAlert) -> dict:
    ratio = f"{plan.sli_record(THRESHOLD_WINDOW)}{plan.selector}"
    if alert.measure == "availability":
        expr = f"(1 - {ratio}) < {number(alert.ratio)}\n"
    else:
        expr = f"{ratio} > {number(alert.ratio)}\n"
    labels, annotations = plan.threshold_overrides
    return {
        "alert": alert.name,
        "expr": expr,
        "for": alert.for_,
        "labels": {"severity": alert.severity, **plan.alert_labels, **labels},
        "annotations": {
            "summary": alert_text("threshold_summary", plan, alert),
            "description": alert_text("threshold_description", plan, alert),
            **links(plan, alert.name),
            **plan.alert_annotations,
            **annotations,
        },
    }
