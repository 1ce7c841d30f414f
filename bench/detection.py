"""How long each alert of the shipped SLOs takes to fire, for a full outage and for 2x, 5x and 14.4x burns.

Run: .venv/bin/python bench/detection.py [--write]

Each burn starts on a Prometheus in service: three days of calls without errors (every
window full), then from minute 0 the given share of calls fails (or is slow, for a latency
SLO). The minutes come from the model of Prometheus that computes the generated promtool
tests' expectations (modelmon/outputs/promtool_tests/simulation.py), one evaluation a
minute, so they are what promtool would find. `--write` puts the tables into
docs/alerting.md between its markers; tests/test_detection.py fails when they drift.
"""

from __future__ import annotations

import argparse
import math
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run as a script, sys.path starts at bench/; the generator package lives at the repo root.
sys.path.insert(0, str(REPO))

from modelmon import build  # noqa: E402
from modelmon.formatting import hours_text, number  # noqa: E402
from modelmon.outputs.promtool_tests import (  # noqa: E402
    ERROR_GRAIN,
    TOTAL_PER_S,
    Phase,
    Simulation,
    Traffic,
    group_key,
    series_labels,
)
from modelmon.plan import BudgetAlertPlan, BurnAlertPlan, SloPlan, plan_file  # noqa: E402

DOC = REPO / "docs" / "alerting.md"
BEGIN, END = "<!-- detection times: begin (bench/detection.py --write) -->", "<!-- detection times: end -->"
BURNS = (Decimal(2), Decimal(5), Decimal("14.4"))
HISTORY = 3 * 1440  # minutes of clean traffic before the burn: the longest default window
HORIZON = 3 * 1440  # how long each burn is followed


def row_name(plan: SloPlan, alert) -> str:
    if isinstance(alert, BurnAlertPlan):
        return f"`{alert.name}` {alert.kind} {alert.long}/{alert.short} ({number(alert.factor)}x)"
    if isinstance(alert, BudgetAlertPlan):
        return f"`{alert.name}` (budget spent)"
    kind = "outage" if alert in plan.outage_alerts else alert.severity
    side = "below" if alert.below else "above"
    return f"`{alert.name}` {kind} ({alert.measure} {side} {number(alert.percent)}%)"


def first_firing(plan: SloPlan, share: Decimal) -> dict:
    """Minutes from the start of a burn of `share` bad calls to each alert's first firing (None: never)."""
    labels = series_labels(plan, 1)[0]
    # Rounded up on the test traffic's exact grid: a burn at a factor is not a hair below it.
    bad = math.ceil(float(min(share, Decimal(1))) * TOTAL_PER_S * ERROR_GRAIN) / ERROR_GRAIN
    traffic = [Traffic(labels, [Phase(0, TOTAL_PER_S, 0.0), Phase(HISTORY, TOTAL_PER_S, bad)])]
    sim = Simulation(plan, traffic, HISTORY + HORIZON)
    key = group_key(plan, labels)
    found = {}
    for alert in plan.alerts():
        fired = sim.first_firing(alert, key)
        # Fired during the clean history would be a false alert: the tables would say so.
        found[alert] = None if fired is None else fired - HISTORY
    return found


def shown(minutes: int | None) -> str:
    return "never" if minutes is None else hours_text(Decimal(minutes * 60))


def tables() -> str:
    out = []
    for item in build.load_all(REPO):
        for plan in plan_file(item.spec):
            columns = [(f"{number(f)}x ({number(min(f * plan.budget, 1) * 100)}%)", f * plan.budget) for f in BURNS]
            columns.append(("full outage (100%)", Decimal(1)))
            results = [first_firing(plan, share) for _, share in columns]
            out.append(f"### `{plan.name}` ({number(plan.objective)}% over {plan.period})\n")
            out.append("| alert | " + " | ".join(title for title, _ in columns) + " |")
            out.append("| --- |" + " ---: |" * len(columns))
            for alert in plan.alerts():
                out.append(f"| {row_name(plan, alert)} | " + " | ".join(shown(r[alert]) for r in results) + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def with_tables(doc: str, text: str) -> str:
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{text}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the tables into {DOC.relative_to(REPO)}")
    args = parser.parse_args()
    text = tables()
    if args.write:
        DOC.write_text(with_tables(DOC.read_text(), text))
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
