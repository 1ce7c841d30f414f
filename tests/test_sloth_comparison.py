"""Sloth's own examples, compiled by real Sloth and by modelmon, replayed by one promtool: the
page and the ticket fire in the same scenarios, modelmon's at most a few tiles later.

The measured minutes are the table of docs/migration.md: a change in either side's alerts
fails here until the documentation says what the alerts now do.
"""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from modelmon.conventions import TILE_INTERVAL
from modelmon.durations import parse_duration
from tests import sloth_comparison as compare
from tools import build as tools

REPO = Path(__file__).resolve().parent.parent
MIGRATION = REPO / "docs" / "migration.md"

# Windows of 6h and more are averaged from 5-minute tiles (modelmon.conventions): their newest
# 5-10 minutes come from the previous tile, and on a Prometheus younger than the window they
# start at the first tile, up to 5 minutes after the data.
TILE_LAG_MINUTES = 3 * parse_duration(TILE_INTERVAL) // 60

# Example -> (service, burn-rate alert name, objective, the traffic its queries read).
EXAMPLES = {
    "getting-started.yml": (
        "myservice",
        "MyServiceHighErrorRate",
        Decimal("99.9"),
        compare.Counters("http_request_duration_seconds_count", 'job="myservice"'),
    ),
    "raw-home-wifi.yml": (
        "home-wifi",
        "WifiClientSatisfaction",
        Decimal(95),
        compare.Gauge("unifipoller_client_satisfaction_ratio"),
    ),
}


def documented(example: str) -> dict[str, tuple[str, str, str, str]]:
    """The example's table in docs/migration.md: scenario -> the page's first minute in Sloth and
    in modelmon, then the ticket's."""
    text = MIGRATION.read_text()
    section = text.split(f"#### `{example}`", 1)[1].split("####", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = tuple(cells[1:])
    return rows


def shown(minute: int | None) -> str:
    return "-" if minute is None else str(minute)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_sloths_alerts_and_modelmons_fire_in_the_same_scenarios_within_the_tiles_lag(example, project, tmp_path):
    service, alert, objective, traffic = EXAMPLES[example]
    source = tools.source("sloth") / "examples" / example
    root = project({})
    shutil.copyfile(source, root / "slos" / example)
    sloth_rules = compare.sloth_rules(source, tmp_path / "sloth.yml")
    modelmon_rules, [plan] = compare.modelmon_rules(root, service, tmp_path / "modelmon.yml")
    measured = {}
    for scenario in compare.scenarios(objective):
        if not traffic.applies(scenario):
            continue
        series = traffic.series(scenario)
        sloth = compare.first_firing(sloth_rules, alert, scenario, series, compare.sloth_severity)
        ours = compare.first_firing(modelmon_rules, alert, scenario, series, compare.modelmon_severity(plan))
        for severity in ("page", "ticket"):
            theirs, mine = getattr(sloth, severity), getattr(ours, severity)
            assert (theirs is None) == (mine is None), (scenario.name, severity, sloth, ours)
            if theirs is not None:
                assert 0 <= mine - theirs <= TILE_LAG_MINUTES, (scenario.name, severity, sloth, ours)
        measured[scenario.name] = (shown(sloth.page), shown(ours.page), shown(sloth.ticket), shown(ours.ticket))
    # Each kind of traffic pages and tickets somewhere, so the comparison compares something.
    assert any(row[0] != "-" for row in measured.values()) and any(row[2] != "-" for row in measured.values())
    assert measured == documented(example), f"docs/migration.md's table of {example} differs from what was measured"


@pytest.mark.parametrize(
    ("example", "service"), [("no-alerts.yml", "myapp"), ("openslo-getting-started.yml", "my-service")]
)
def test_sloths_examples_without_alerts_have_none_in_modelmon_either(example, service, project, tmp_path):
    # no-alerts disables page and ticket; Sloth gives OpenSLO SLOs no alerts.
    source = tools.source("sloth") / "examples" / example
    root = project({})
    shutil.copyfile(source, root / "slos" / example)
    sloth_text = compare.sloth_rules(source, tmp_path / "sloth.yml").read_text()
    modelmon_text, [plan] = compare.modelmon_rules(root, service, tmp_path / "modelmon.yml")
    assert not re.search(r"^\s*- alert:", sloth_text, re.M)
    assert plan.alerts() == ()
    assert not re.search(r"^\s*- alert:", modelmon_text.read_text(), re.M)


def test_an_openslo_ratio_of_good_events_records_the_error_ratio_sloth_records(project, tmp_path):
    """Sloth reads OpenSLO's good/total as the raw ratio 1 - good/total; modelmon as the events
    total - good over total, so that its long windows divide events: the same ratio."""
    source = tools.source("sloth") / "examples" / "openslo-getting-started.yml"
    root = project({})
    shutil.copyfile(source, root / "slos" / "openslo.yml")
    sloth_rules = compare.sloth_rules(source, tmp_path / "sloth.yml")
    modelmon_rules, _ = compare.modelmon_rules(root, "my-service", tmp_path / "modelmon.yml")
    traffic = compare.Counters("http_request_duration_seconds_count", 'job="myservice"')
    [burn] = [s for s in compare.scenarios(Decimal("99.9")) if s.name == "burn-14.4x-above"]
    # Without alerts modelmon records the windows its SLO panels read: the 5m and the period's,
    # whose ratio counts calls where Sloth's averages 5m ratios (docs/migration.md).
    records = ["slo:sli_error:ratio_rate5m"]
    minutes = [62, 65, 90, 150]
    theirs = compare.recorded(sloth_rules, records, minutes, traffic.series(burn))
    ours = compare.recorded(modelmon_rules, records, minutes, traffic.series(burn))
    assert len(theirs) == len(records) * len(minutes)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-9), key
    # Past the first minutes of the burn the ratio is the burn's: 1.2 x 14.4 x 0.1 %.
    assert theirs[("slo:sli_error:ratio_rate5m", 90)] == pytest.approx(0.01728, rel=1e-6)
