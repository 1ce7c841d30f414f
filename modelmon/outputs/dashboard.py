"""The Grafana "Models Monitoring" dashboard, built with Grafana's own schema types.

The guide's eleven panels come first, as the guide draws them; then one row per
SLO of the file, built on the generated recording rules. Panels are typed with
grafana-foundation-sdk builders, so a field Grafana does not know cannot be
written. Thresholds of the error-rate and availability panels are the numbers of
the file's SLOs, so a panel turns red exactly where the alert fires.

Where the guide's query would show "No data" or miss real model names, the panel
keeps its meaning and is made robust (see `queries` below and docs/dashboard.md).
"""

from __future__ import annotations

import json
from decimal import Decimal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import gauge, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from modelmon import contract
from modelmon.conventions import (
    BUDGET_REMAINING_RECORD,
    COVERAGE_RECORD,
    CURRENT_BURN_RECORD,
    OBJECTIVE_RECORD,
    PERIOD_BURN_RECORD,
    SHORT_WINDOW,
    escape,
    slo_selector,
)
from modelmon.formatting import number
from modelmon.layout import Layout
from modelmon.plan import (
    AVAILABILITY_PANEL,
    ERROR_RATE_PANEL,
    HOURLY_PANEL,
    LATENCY_PANEL,
    THROUGHPUT_PANEL,
    TOKENS_PANEL,
    Band,
    ProjectPlan,
    ServicePlan,
    SloPanels,
    SloPlan,
    family_panel,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
MODEL_FILTER = f'{contract.MODEL_LABEL}=~"$model"'
RATE_WINDOW = SHORT_WINDOW  # the guide's window for every rate panel, and the threshold alerts'
# Grafana steps a target by at least its `interval` ("Min step"), on multiples of the step,
# and puts the step in $__interval. A window of $__interval makes each bar count exactly the
# step that ends at it: bars neither overlap nor leave gaps, and the legend's sum counts each
# call once. At 1h the bars are hourly; a range too long for that at the panel's width gets a
# longer step, and each bar its step.
STEP = "$__interval"
HOURLY_STEP = "1h"
# The budget stat's range: below -100 % more than twice the budget is gone, and the exact
# figure tells the reader nothing more (it stays in the recorded series).
BUDGET_SHOWN = (-100, 100)


# --- Queries --------------------------------------------------------------------------


def _sum_rate(metric: str, selector: str = MODEL_FILTER, by_model: bool = True) -> str:
    by = " by (model) " if by_model else ""
    return f"sum{by}(rate({metric}{{{selector}}}[{RATE_WINDOW}]))"


def _errors() -> str:
    # A model that never failed may have no error series yet: `or 0 * requests`
    # gives it 0 errors, so its error rate reads 0 % and its availability 100 %.
    return f"({_sum_rate(contract.ERRORS_TOTAL)} or 0 * {_sum_rate(contract.REQUESTS_TOTAL)})"


def queries(families: list[tuple[str, str]]) -> dict[str, str]:
    """Panel title -> PromQL. Each keeps the guide's meaning; the comments say what changed."""
    requests = _sum_rate(contract.REQUESTS_TOTAL)
    found = {
        THROUGHPUT_PANEL: requests,
        LATENCY_PANEL: f"{_sum_rate(contract.LATENCY_MS_SUM)} / {_sum_rate(contract.LATENCY_MS_COUNT)}",
        ERROR_RATE_PANEL: f"{_errors()} / {requests} * 100",
        TOKENS_PANEL: _sum_rate(contract.TOKENS_USED_TOTAL),
    }
    # Family shares divide by all requests, whatever the model filter says: a
    # family's share of the whole must not change when the view is narrowed. A family
    # without calls has no series to sum: `or vector(0)` makes it 0 %, not "No data".
    # Without any traffic there is no share to show: `> 0` leaves "No data", not 0/0.
    everything = f"sum(rate({contract.REQUESTS_TOTAL}[{RATE_WINDOW}]))"
    for name, pattern in families:
        matcher = f'{contract.MODEL_LABEL}=~"{escape(pattern)}"'
        family = _sum_rate(contract.REQUESTS_TOTAL, matcher, by_model=False)
        found[family_panel(name)] = f"({family} or vector(0)) / ({everything} > 0) * 100"
    found[HOURLY_PANEL] = f"sum by (model) (increase({contract.REQUESTS_TOTAL}{{{MODEL_FILTER}}}[{STEP}]))"
    found[AVAILABILITY_PANEL] = f"(1 - {_errors()} / {requests}) * 100"
    return found


def _target(expr: str, legend: str = "{{model}}", ref: str = "A", step: str | None = None) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range().datasource(DATASOURCE)
    return target.interval(step) if step else target


def _steps(base: tuple[None, str], *steps: tuple[Decimal | None, str]) -> dash.ThresholdsConfig:
    """Grafana's threshold steps: the base colour, then each step drawn from its value (None: not drawn)."""
    drawn = [Threshold(value=None, color=base[1])]
    drawn += [Threshold(value=float(value), color=color) for value, color in steps if value is not None]
    return dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(drawn)


def _legend(calcs: list[str]) -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(calcs)
    )


def _series(
    title: str, expr: str, unit: str, description: str, calcs: list[str], step: str | None = None
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(_target(expr, step=step))
        .unit(unit)
        .legend(_legend(calcs))
        .height(8)
        .span(12)
    )


# --- The dashboard ----------------------------------------------------------------------


def files(project: ProjectPlan, layout: Layout) -> dict[str, str]:
    """The dashboard of each service whose spec asks for one."""
    if not layout.dashboards:
        return {}
    found = {}
    for service in project.services:
        if service.dashboard is not None:
            board = build(service, layout.note([service.source]))
            found[layout.dashboard_path(service.dashboard.uid)] = json.dumps(board, indent=2) + "\n"
    return found


def build(service: ServicePlan, note: str) -> dict:
    """The service's dashboard as Grafana's JSON model; `note` (the generated-file header) is its description."""
    board = service.dashboard
    families = list(board.families)
    q = queries(families)
    builder = (
        dash.Dashboard(board.title)
        .uid(board.uid)
        .description(note)
        .tags(["modelmon", "generated", service.service])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dash.QueryVariable("model")
            .label("Model")
            .description("Models to show; the family gauges always compare against all traffic.")
            .datasource(DATASOURCE)
            .query({"query": f"label_values({contract.REQUESTS_TOTAL}, model)", "refId": "models"})
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    builder.with_panel(
        _series(
            THROUGHPUT_PANEL,
            q[THROUGHPUT_PANEL],
            "reqps",
            "Requests per second for each model",
            ["mean", "max"],
        )
    )
    builder.with_panel(
        _series(
            LATENCY_PANEL,
            q[LATENCY_PANEL],
            "ms",
            "Average response time in milliseconds per model",
            ["mean", "max"],
        )
    )
    builder.with_panel(
        _series(
            ERROR_RATE_PANEL,
            q[ERROR_RATE_PANEL],
            "percent",
            "Error percentage for each model. " + _band_text(board.error_band, above=True),
            ["mean", "max"],
        )
        .thresholds(_steps((None, "green"), (board.error_band.warning, "yellow"), (board.error_band.critical, "red")))
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE))
        .min(0)
    )
    builder.with_panel(
        _series(
            TOKENS_PANEL,
            q[TOKENS_PANEL],
            "short",
            "Tokens consumed per second by model",
            ["sum"],
        )
    )
    width, wider = divmod(24, len(families))
    for index, (name, pattern) in enumerate(families):
        builder.with_panel(
            gauge.Panel()
            .title(family_panel(name))
            .description(f"Share of all requests (last {RATE_WINDOW}) from models matching {pattern}")
            .datasource(DATASOURCE)
            .with_target(_target(q[family_panel(name)], legend=name))
            .unit("percent")
            .min(0)
            .max(100)
            .thresholds(_steps((None, "red"), (board.family_yellow_from, "yellow"), (board.family_green_from, "green")))
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .show_threshold_markers(True)
            .height(6)
            .span(width + 1 if index < wider else width)
        )
    builder.with_panel(
        _series(
            HOURLY_PANEL,
            q[HOURLY_PANEL],
            "short",
            "Requests per model in each hour, one bar per hour (per step on ranges too long for hourly bars): "
            "the legend's sum is the calls of the range, each counted once. The hour under way is drawn "
            "when it ends; Model Request Throughput shows the calls right now.",
            ["sum"],
            step=HOURLY_STEP,
        )
        .draw_style(common.GraphDrawStyle.BARS)
        # The bar at each step counts the hour that ends there: draw it over that hour.
        .bar_alignment(common.BarAlignment.BEFORE)
        .fill_opacity(80)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    )
    builder.with_panel(
        _series(
            AVAILABILITY_PANEL,
            q[AVAILABILITY_PANEL],
            "percent",
            "Availability percentage (successful requests / total requests). "
            + _band_text(board.availability_band, above=False),
            ["mean", "min"],
        )
        .thresholds(_availability_steps(board.availability_band))
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE))
        .max(100)
    )
    for plan in service.slos:
        builder.with_row(slo_row(plan))
    built = _expand_rows(json.loads(json.dumps(builder.build(), cls=JSONEncoder)))
    drawn = tuple(panel["title"] for panel in built["panels"])
    if drawn != board.panels:  # runbooks link to panels by the ids the plan gives them
        raise RuntimeError(f"the dashboard draws {drawn}, the plan expects {board.panels}")
    return built


def _band_text(band: Band, above: bool) -> str:
    """What the steps mean, in words: only the steps drawn."""
    if band.warning is None and band.critical is None:
        return "No threshold alerts, so no bands."
    parts = [f"yellow from {number(band.warning)}%"] if band.warning is not None else []
    parts += [f"red from {number(band.critical)}%"] if band.critical is not None else []
    side = "rising above" if above else "falling below"
    return f"Bands at the threshold alerts' levels ({side}): {', '.join(parts)}."


def _availability_steps(band: Band) -> dash.ThresholdsConfig:
    """Red below the critical level, yellow below the warning level, green above; a missing level is no step."""
    if band.critical is None:
        return _steps((None, "yellow" if band.warning is not None else "green"), (band.warning, "green"))
    return _steps(
        (None, "red"), (band.critical, "yellow" if band.warning is not None else "green"), (band.warning, "green")
    )


def _expand_rows(board: dict) -> dict:
    """Open rows, with their panels after them, and stable panel ids.

    Grafana keeps a row's panels inside the row only while it is collapsed; an
    open row with nested panels shows nothing (grafana/grafana#50855). Ids are
    numbered in order so links to a panel (viewPanel=<id>) stay valid across builds.
    """
    flat = []
    for panel in board["panels"]:
        nested = panel.pop("panels", None) if panel["type"] == "row" else None
        flat.append(panel)
        if panel["type"] == "row":
            panel["collapsed"] = False
            panel["panels"] = []
            flat += nested or []
    for number_, panel in enumerate(flat, start=1):
        panel["id"] = number_
    board["panels"] = flat
    return board


def slo_queries(plan: SloPlan) -> dict[str, str]:
    """Panel title -> PromQL of one SLO row, all on the generated recording rules."""
    group = slo_selector(plan.service, plan.name, *([MODEL_FILTER] if contract.MODEL_LABEL in plan.group_by else []))
    low, high = BUDGET_SHOWN
    return {
        "SLI": f"(1 - {plan.sli_record(RATE_WINDOW)}{group}) * 100",
        "objective": f"{OBJECTIVE_RECORD}{plan.selector} * 100",
        "budget": f"clamp({BUDGET_REMAINING_RECORD}{group} * 100, {low}, {high})",
        "coverage": f"{COVERAGE_RECORD}{group} * 100",
        "burn": f"{CURRENT_BURN_RECORD}{group}",
        "period burn": f"{PERIOD_BURN_RECORD}{group}",
    }


def slo_row(plan: SloPlan) -> dash.Row:
    titles = SloPanels.of(plan)
    q = slo_queries(plan)
    low, high = BUDGET_SHOWN
    legend = "{{" + "}}/{{".join(plan.group_by) + "}}" if plan.group_by else plan.name
    page = min((a.factor for a in plan.burn_alerts if a.kind == "page"), default=None)
    burn_steps = [(None, "green"), (1.0, "yellow")] + ([(float(page), "red")] if page is not None else [])
    return (
        dash.Row(titles.row)
        .with_panel(
            timeseries.Panel()
            .title(titles.sli)
            .description(f"Good events over {RATE_WINDOW} against the {number(plan.objective)}% objective.")
            .datasource(DATASOURCE)
            .with_target(_target(q["SLI"], legend=legend))
            .with_target(_target(q["objective"], legend="objective", ref="B"))
            .unit("percent")
            .max(100)
            .legend(_legend(["mean", "min"]))
            .height(8)
            .span(8)
        )
        .with_panel(
            stat.Panel()
            .title(titles.budget)
            .description(
                f"Share of the {plan.period} error budget left: the errors so far against the whole period's "
                f"budget; below 0 the SLO is violated. Shown between {low} % and {high} %: below {low} % more "
                "than twice the budget is gone. The exact value is " + BUDGET_REMAINING_RECORD + "."
            )
            .datasource(DATASOURCE)
            .with_target(_target(q["budget"], legend=legend))
            .unit("percent")
            .thresholds(_steps((None, "red"), (0.0, "yellow"), (25.0, "green")))
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .height(8)
            .span(4)
        )
        .with_panel(
            stat.Panel()
            .title(titles.coverage)
            .description(
                f"Share of the {plan.period} period the data covers. Below 100 % Prometheus holds less than a "
                "period: the budget remaining counts only the errors seen so far, the rest of the period is to come."
            )
            .datasource(DATASOURCE)
            .with_target(_target(q["coverage"], legend=legend))
            .unit("percent")
            .thresholds(_steps((None, "yellow"), (100.0, "green")))
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .height(8)
            .span(4)
        )
        .with_panel(
            timeseries.Panel()
            .title(titles.burn)
            .description(
                f"Budget burn over {RATE_WINDOW} and over the whole period; 1 spends the budget exactly in the period."
            )
            .datasource(DATASOURCE)
            .with_target(_target(q["burn"], legend=f"{legend} {RATE_WINDOW}"))
            .with_target(_target(q["period burn"], legend=f"{legend} {plan.period}", ref="B"))
            .unit("x")
            .thresholds(_steps(*burn_steps))
            .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE))
            .legend(_legend(["mean", "max"]))
            .height(8)
            .span(8)
        )
    )


def all_queries(board: dict) -> list[str]:
    """Every PromQL expression of a built dashboard, rows' panels included, as Grafana sends them."""
    panels = []
    for panel in board["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])
    return [as_sent(t) for p in panels for t in p.get("targets", [])]


def as_sent(target: dict) -> str:
    """A target's PromQL as Grafana sends it with every model selected ($model as All),
    at the target's minimum step: what Prometheus evaluates at each point of the panel."""
    expr = target["expr"].replace("$model", ".*")
    return expr.replace(STEP, target["interval"]) if "interval" in target else expr
