"""Writing and listing the files of a throwaway project, for tests of what a build or validate writes."""

from __future__ import annotations

import textwrap
from pathlib import Path

# One service with every SLI form (events with group_by, raw, an availability shortcut with a
# selector and custom windows): the specs beyond the shipped ones that judges and outputs read.
EVERY_FORM = """
version: modelmon/v1
service: checkout
labels:
  team: payments
slos:
  - name: requests
    objective: 99.5
    sli:
      events:
        error_query: sum by (route) (rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))
        total_query: sum by (route) (rate(http_requests_total{job="checkout"}[{{.window}}]))
        group_by: [route]
    alerting:
      name: CheckoutErrors
  - name: ratio
    objective: 99
    period: 28d
    sli:
      raw:
        error_ratio_query: job:errors:ratio_rate{{.window}}
    alerting:
      name: CheckoutRatio
  - name: eu-availability
    objective: 99.9
    sli:
      availability:
        selector: 'model=~"claude.*", region="eu"'
        group_by: [model, region]
    alerting:
      name: CheckoutEuAvailability
      windows:
        - {severity: page, long: 1h, short: 5m, budget_percent: 2}
        - {severity: ticket, long: 3d, short: 6h, budget_percent: 10}
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def files_in(root: Path) -> set[str]:
    """Every file but the build cache and the layout file itself."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".modelmon" and p.name != "modelmon.toml"
    }
