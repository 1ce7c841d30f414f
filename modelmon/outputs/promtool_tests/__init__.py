"""promtool unit tests for every SLO, generated from the same plans as the rules.

Each SLO gets scenarios of model traffic (healthy for a whole period, a full outage of
one model, a slow burn, each side of every threshold: `scenarios`). The traffic
(`traffic`) is written as promtool input series (`writer`); what must happen is computed
by replaying the same counters through a model of Prometheus (`simulation`), and
promtool then proves the rules against it: an alert one evaluation before it may fire
(silent) and at the one it fires, the other models silent, and the recorded values exact.

The expectations come from the plan alone: the alerts' thresholds, windows, `for`,
labels and annotations as planned, never the rules built from them (nothing here
imports `modelmon.outputs.rules`), so a rule that says something else fails its tests.
"""

from __future__ import annotations

from modelmon.outputs.promtool_tests.scenarios import Scenario, scenarios
from modelmon.outputs.promtool_tests.simulation import Simulation
from modelmon.outputs.promtool_tests.traffic import (
    ERROR_GRAIN,
    TOTAL_PER_S,
    Phase,
    TestGenerationError,
    TestGenerationErrors,
    Traffic,
    group_key,
    series_labels,
)
from modelmon.outputs.promtool_tests.writer import TestFiles, files, test_files

__all__ = [
    "ERROR_GRAIN",
    "TOTAL_PER_S",
    "Phase",
    "Scenario",
    "Simulation",
    "TestFiles",
    "TestGenerationError",
    "TestGenerationErrors",
    "Traffic",
    "files",
    "group_key",
    "scenarios",
    "series_labels",
    "test_files",
]
