"""Sloth's alerts beside modelmon's for the same spec: the first minute each fires, per scenario.

Real Sloth (the pinned build) writes its rules for a spec and modelmon compiles the same
spec; one promtool (the pinned build) replays each scenario against each rule file. The
scenario's test asks, every `step`, for no alert of the spec's burn-rate alert name: each
minute promtool reports an alert there is a minute it fired, so its failures are the
firing record. Page and ticket are told apart by Sloth's `sloth_severity` label and by
the window labels modelmon puts on each burn-rate alert.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

from modelmon import build
from modelmon.conventions import LONG_WINDOW_LABEL
from modelmon.durations import format_duration
from modelmon.plan import SloPlan
from tests import binaries


@dataclass(frozen=True)
class Scenario:
    """Traffic of one SLO: `ratio` of its calls fail from `start` minutes on (`None`: no error
    series at all; calls 0: no traffic), watched for `minutes` at every `step` minutes."""

    name: str
    ratio: Decimal | None
    start: int
    minutes: int
    step: int = 1
    calls_per_minute: int = 600


def scenarios(objective: Decimal) -> list[Scenario]:
    """Healthy traffic, a full outage, burns just above and below each default window's factor
    (page 14.4 and 6, ticket 3 and 1, for a 30-day period), a missing error series, no traffic."""
    budget = (100 - objective) / 100
    found = [
        Scenario("healthy", budget / 2, 0, 480, step=5),
        Scenario("outage", Decimal(1), 60, 180),
        Scenario("no-error-series", None, 0, 360, step=5),
        Scenario("no-traffic", Decimal(0), 0, 360, step=5),
    ]
    # The burns start an hour into the data, as on a Prometheus an hour old: the long windows hold
    # what there is, so even the 3d/6h ticket fires within hours, and a few hours replay it all.
    for factor, minutes, step in ((14.4, 180, 1), (6, 480, 1), (3, 240, 1), (1, 480, 1)):
        for side, times in (("above", Decimal("1.2")), ("below", Decimal("0.8"))):
            ratio = min(Decimal(1), budget * Decimal(str(factor)) * times)
            found.append(Scenario(f"burn-{factor:g}x-{side}", ratio, 60, minutes, step))
    return found


@dataclass(frozen=True)
class Counters:
    """A counter of good and one of failed requests, as Sloth's getting-started example reads them."""

    metric: str
    labels: str  # the selector's labels, e.g. job="myservice"
    error_label: str = 'code="500"'
    ok_label: str = 'code="200"'

    def applies(self, scenario: Scenario) -> bool:
        return True

    def series(self, scenario: Scenario) -> list[dict]:
        calls = Decimal(0 if scenario.name == "no-traffic" else scenario.calls_per_minute)
        bad = calls * (scenario.ratio or 0)
        before = scenario.start

        def counter(healthy: Decimal, then: Decimal) -> str:
            """`healthy` calls a minute up to `start`, `then` a minute from there on."""
            if not before:
                return f"0+{_num(then)}x{scenario.minutes}"
            tail = f"{_num(healthy * before + then)}+{_num(then)}x{scenario.minutes - before - 1}"
            return f"0+{_num(healthy)}x{before} {tail}"

        found = [{"series": f"{self.metric}{{{self.labels},{self.ok_label}}}", "values": counter(calls, calls - bad)}]
        if scenario.ratio is not None:
            # Healthy before the scenario starts: no failed call.
            error = {"series": f"{self.metric}{{{self.labels},{self.error_label}}}", "values": counter(Decimal(0), bad)}
            found.append(error)
        return found


@dataclass(frozen=True)
class Gauge:
    """A gauge between 0 and 1 whose shortfall is the error ratio, as Sloth's raw home-wifi
    example reads its clients' satisfaction."""

    metric: str

    def applies(self, scenario: Scenario) -> bool:
        return scenario.name != "no-error-series"  # a raw ratio has no error series of its own

    def series(self, scenario: Scenario) -> list[dict]:
        if scenario.name == "no-traffic":
            return []
        after = f"{_num(1 - (scenario.ratio or 0))}x{scenario.minutes - scenario.start}"
        values = f"1x{scenario.start - 1} {after}" if scenario.start else after
        return [{"series": f'{self.metric}{{client="a"}}', "values": values}]


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Firing:
    """The first minute (from the scenario's start) each severity's alert fired; None: never."""

    page: int | None
    ticket: int | None


_FAILED = re.compile(r"alertname: (?P<name>\S+), time: (?P<time>\S+),")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def first_firing(rules: Path, alert: str, scenario: Scenario, series: list[dict], severity_of) -> Firing:
    """Replay `scenario` against `rules` with the pinned promtool; `severity_of(labels)` says
    whether an alert that fired is a page or a ticket."""
    # Groups in the file's order at each evaluation: recordings before the alerts that read them
    # (promtool's own order is a map's, which moves an alert a minute either way).
    order = [group["name"] for group in yaml.safe_load(rules.read_text())["groups"]]
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "group_eval_order": order,
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": format_duration(minute * 60), "alertname": alert, "exp_alerts": []}
                    for minute in range(0, scenario.minutes + 1, scenario.step)
                ],
            }
        ],
    }
    path = rules.with_name(f"{rules.stem}-{scenario.name}.test.yml")
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(
        [binaries.pinned("promtool"), "test", "rules", path.name], cwd=rules.parent, capture_output=True, text=True
    )
    output = run.stdout + run.stderr
    if run.returncode not in (0, 1) or ("FAILED" not in output and run.returncode):
        raise AssertionError(f"promtool could not run {path}:\n{output}")
    first: dict[str, int] = {}
    minute = None
    for line in output.splitlines():
        if found := _FAILED.search(line):
            minute = _minutes(found["time"])
        elif "Labels:{" in line and minute is not None:
            kind = severity_of(dict(_LABEL.findall(line)))
            if kind is not None and kind not in first:
                first[kind] = minute - scenario.start
    return Firing(first.get("page"), first.get("ticket"))


def _minutes(text: str) -> int:
    total = 0
    for number, unit in re.findall(r"(\d+)([hms])", text):
        total += int(number) * {"h": 60, "m": 1, "s": 0}[unit]
    return total


def sloth_rules(spec: Path, out: Path) -> Path:
    """Real Sloth's rules for `spec`, as a plain rule file (a PrometheusRule's groups for Kubernetes input)."""
    raw = out.with_suffix(".sloth-out.yml")
    run = subprocess.run(
        [binaries.pinned("sloth"), "generate", "-i", str(spec), "-o", str(raw)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    groups = []
    for document in yaml.safe_load_all(raw.read_text()):
        if document:
            groups += document["spec"]["groups"] if "spec" in document else document["groups"]
    out.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return out


def modelmon_rules(project: Path, service: str, out: Path) -> tuple[Path, list[SloPlan]]:
    compiled = build.compile_all(project)
    out.write_text(compiled.files[f"rules/{service}.yml"])
    return out, compiled.plans[service]


def sloth_severity(labels: dict[str, str]) -> str | None:
    return labels.get("sloth_severity")


def modelmon_severity(plan: SloPlan):
    """Page or ticket of one of modelmon's burn-rate alerts, by its long window."""
    kinds = {alert.long: alert.kind for alert in plan.burn_alerts}

    def severity(labels: dict[str, str]) -> str | None:
        return kinds.get(labels.get(LONG_WINDOW_LABEL, ""))

    return severity


_GOT = re.compile(r'expr: "(?P<expr>(?:[^"\\]|\\.)+)", time: (?P<time>\S+),\s+exp: .*?\n\s+got: (?P<got>.*)\n')
_SAMPLE = re.compile(r'\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\} (?P<value>\S+?)(?:, |$)')


def evaluated(
    rules: Path, expressions: list[str], minutes: list[int], series: list[dict]
) -> dict[tuple[str, int], list[tuple[dict[str, str], float]]]:
    """What each expression evaluates to at each minute, from `rules` over `series`: every series,
    as (labels, value)."""
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "group_eval_order": [group["name"] for group in yaml.safe_load(rules.read_text())["groups"]],
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                # Expecting nothing, promtool prints what there is.
                "promql_expr_test": [
                    {"expr": expr, "eval_time": format_duration(minute * 60), "exp_samples": []}
                    for expr in expressions
                    for minute in minutes
                ],
            }
        ],
    }
    path = rules.with_name(f"{rules.stem}-evaluated.test.yml")
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(
        [binaries.pinned("promtool"), "test", "rules", path.name], cwd=rules.parent, capture_output=True, text=True
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    found: dict[tuple[str, int], list[tuple[dict[str, str], float]]] = {
        (expr, minute): [] for expr in expressions for minute in minutes
    }
    for match in _GOT.finditer(run.stdout + run.stderr):
        key = (match["expr"].encode().decode("unicode_escape"), _minutes(match["time"]))
        for sample in _SAMPLE.finditer(match["got"]):
            found[key].append((dict(_LABEL.findall(sample["labels"])), float(sample["value"])))
    return found


def recorded(
    rules: Path, expressions: list[str], minutes: list[int], series: list[dict]
) -> dict[tuple[str, int], float]:
    """What each expression (one series) evaluates to at each minute, from `rules` over `series`."""
    return {key: samples[0][1] for key, samples in evaluated(rules, expressions, minutes, series).items() if samples}
