"""Tiles for the time before the rules ran: what `modelmon backfill` hands to promtool.

Windows of 6h and more average the 5-minute tiles (modelmon/outputs/rules.py). Right after
the rules are first loaded there are no tiles yet, so a 3d window holds only the
minutes since: for its first three days it reads like a shorter window. Prometheus
can compute recording rules for the past (`promtool tsdb create-blocks-from rules`)
but not rules that read other rules being backfilled, and the tiles read the 5m
rates of the SLI group. So the backfill file records each tile straight from the raw
counters (or the SLI's own query), under the same name, labels and 5m interval.
"""

from __future__ import annotations

from modelmon.conventions import TILE_INTERVAL, TILE_WINDOW
from modelmon.durations import parse_duration
from modelmon.outputs.rules import clock_rule, coverage_clocks, file_signals, recording_rule, tile_sources
from modelmon.plan import SloPlan


def tile_groups(plans_by_service: dict[str, list[SloPlan]]) -> list[dict]:
    """One group per service with every tile its long windows average, and the clocks that date them
    (what the period's coverage counts from), each computed from raw data."""
    groups = []
    for service, plans in plans_by_service.items():
        signals, ratio_tiled = tile_sources(plans, file_signals(plans))
        rules = [recording_rule(s.tile, s.expr(TILE_WINDOW, raw=True), s.labels) for s in signals]
        rules += [
            recording_rule(p.ratio_tile, p.error_ratio_expr(TILE_WINDOW), p.ratio_tile_labels) for p in ratio_tiled
        ]
        rules += [clock_rule(plan, raw=True) for plan in coverage_clocks(plans).values()]
        if rules:
            groups.append({"name": f"{service}-sli-tiles-backfill", "interval": TILE_INTERVAL, "rules": rules})
    return groups


def tile_names(groups: list[dict]) -> list[str]:
    return sorted({rule["record"] for group in groups for rule in group["rules"]})


def first_live_tile(prometheus, groups: list[dict], lookback_s: int) -> float | None:
    """When the running rules recorded their first tile (to the 5 minutes), or None if they never did.

    Backfilled tiles must end there: tiles of both kinds in one span would count it twice.
    One query per record: timestamp() drops the name, so records would collide in one vector.
    """
    found = []
    for name in tile_names(groups):
        result = prometheus.query(f"min(min_over_time(timestamp({name})[{lookback_s}s:{TILE_INTERVAL}]))")
        found += [float(r["value"][1]) for r in result]
    return min(found, default=None)


def longest_window_s(plans_by_service: dict[str, list[SloPlan]]) -> int:
    """How far back tiles are worth computing: the longest window that averages them."""
    windows = [parse_duration(w) for plans in plans_by_service.values() for p in plans for w in p.derived_windows]
    return max(windows, default=0)
