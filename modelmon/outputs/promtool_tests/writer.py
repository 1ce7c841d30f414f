"""promtool unit-test files from the scenarios and what the simulation expects of them.

A test group per scenario: the traffic as input series (promtool's expanding notation; for
an SLI on the user's own queries, the records those queries make), an alert_rule_test at
each checked time with the alerts that must fire, and a promql_expr_test of the recorded
values. One file per evaluation interval: promtool evaluates every group of a file at it.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import posixpath
import queue
import threading
from collections.abc import Callable
from decimal import Decimal
from multiprocessing import connection
from multiprocessing.connection import Connection

from modelmon import contract
from modelmon.cache import KeptContent, TestGroups
from modelmon.conventions import (
    BUDGET_REMAINING_RECORD,
    COVERAGE_RECORD,
    CURRENT_BURN_RECORD,
    ERROR_BUDGET_RECORD,
    LABEL_NAME,
    OBJECTIVE_RECORD,
    PERIOD_BURN_RECORD,
    PERIOD_DAYS_RECORD,
    SHORT_WINDOW,
    SLOTH_INFO_RECORD,
    TILE_WINDOW,
    escape,
)
from modelmon.durations import format_duration, parse_duration
from modelmon.formatting import number
from modelmon.layout import OUTPUTS, Layout
from modelmon.outputs.promtool_tests.scenarios import PERIOD, Scenario, scenarios
from modelmon.outputs.promtool_tests.simulation import Simulation, alert_shape, plan_shape
from modelmon.outputs.promtool_tests.traffic import RECORDED_INPUT_KINDS, TestGenerationError, TestGenerationErrors
from modelmon.plan import ProjectPlan, ServicePlan, SloPlan
from modelmon.serialize import dump_yaml


def series_text(name: str, labels: dict[str, str]) -> str:
    """A series as promtool reads it in input_series and exp_samples: labels sorted, values escaped."""
    inner = ", ".join(f'{_label(k)}="{escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _label(name: str) -> str:
    """A label name in a series: quoted when only Prometheus 3's UTF-8 names hold it (info labels)."""
    return name if LABEL_NAME.match(name) else f'"{escape(name)}"'


def _value(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


def expanding(values: list[float | None]) -> str:
    """promtool's expanding notation: runs with a constant step become 'a+bxN'."""
    parts, i = [], 0
    while i < len(values):
        if values[i] is None:
            j = i
            while j + 1 < len(values) and values[j + 1] is None:
                j += 1
            parts.append("_" if j == i else f"_x{j - i + 1}")
            i = j + 1
            continue
        j = i
        step = None
        while j + 1 < len(values) and values[j + 1] is not None:
            delta = values[j + 1] - values[j]
            if step is None:
                step = delta
            elif delta != step:
                break
            j += 1
        if j == i:
            parts.append(_value(values[i]))
        else:
            sign = "+" if step >= 0 else "-"
            parts.append(f"{_value(values[i])}{sign}{_value(abs(step))}x{j - i}")
        i = j + 1
    return " ".join(parts)


def input_series(plan: SloPlan, sim: Simulation) -> list[dict]:
    series = []
    if plan.kind in RECORDED_INPUT_KINDS:
        # The rules cannot run the user's queries on test data: the test gives what those
        # queries record (rates, or a raw SLI's ratio), one sample per evaluation, and the
        # rules compute everything from there. (Per evaluation: promtool refuses queries over
        # 10,000 samples, and a period of them every 2 minutes would be 21,600.)
        for key in sim.groups:
            for record, labels, values in _recorded_inputs(plan, sim, key):
                series.append({"series": series_text(record, labels), "values": values})
        return series
    for i, traffic in enumerate(sim.traffic):
        if plan.kind == "latency":
            le = contract.le_label(float(plan.threshold_ms))
            named = (
                (contract.LATENCY_MS_COUNT, traffic.labels, 0),
                (contract.LATENCY_MS_BUCKET, {**traffic.labels, "le": le}, 2),
            )
        else:
            named = [(contract.REQUESTS_TOTAL, traffic.labels, 0)]
            if traffic.error_series:
                named.append((contract.ERRORS_TOTAL, traffic.labels, 1))
        series += [
            {"series": series_text(n, labels), "values": sim.encoded_input(i, counter, expanding)}
            for n, labels, counter in named
        ]
    return series


def _recorded_inputs(plan: SloPlan, sim: Simulation, key: tuple) -> list[tuple[str, dict, str]]:
    """What an events or raw SLI's own queries record for one group, at every evaluation: each
    record, its labels as the rules write them, its values in expanding notation."""
    tile = sim.units(parse_duration(TILE_WINDOW))
    labels = sim.sample_labels(key)
    if plan.total is None:
        found = [
            (
                plan.sli_record(w),
                {**labels, **plan.window_labels(w)},
                sim.encoded_series("ratio", sim.units(parse_duration(w)), key, expanding),
            )
            for w in plan.raw_windows
        ]
        if plan.derived_windows:
            tile_labels = {**labels, **plan.ratio_tile_labels}
            found.append((plan.ratio_tile, tile_labels, sim.encoded_series("ratio", tile, key, expanding)))
        return found
    found = []
    for role, signal in (("total", plan.total), ("bad", plan.bad)):
        windows = [(signal.rate(w), sim.units(parse_duration(w))) for w in plan.raw_windows]
        if plan.derived_windows:
            windows.append((signal.tile, tile))
        found += [(record, labels, sim.encoded_series(role, w, key, expanding)) for record, w in windows]
    return found


def expr_tests(plan: SloPlan, sim: Simulation, minute: int, records: tuple[str, ...]) -> list[dict]:
    tests = []
    budget = float(number(plan.budget))
    for record in records:
        if record == PERIOD:
            tests += _period_tests(plan, sim, minute, budget)
            continue
        samples = []
        for key in sim.groups:
            value = sim.ratio(sim.units(parse_duration(record)), minute, key)
            if value is not None:
                samples.append(({**sim.sample_labels(key), **plan.window_labels(record)}, value))
        tests.append(_expr(plan.sli_record(record), plan, minute, samples, sim.unit))
        if record == SHORT_WINDOW:
            burn = [(labels, value / budget) for labels, value in samples]
            tests.append(_expr(CURRENT_BURN_RECORD, plan, minute, burn, sim.unit))
    return tests


def _period_tests(plan: SloPlan, sim: Simulation, minute: int, budget: float) -> list[dict]:
    ratios, remaining, coverage = [], [], []
    for key in sim.groups:
        value = sim.period_ratio(minute, key)
        if value is not None:
            labels = {**sim.sample_labels(key), **plan.window_labels(plan.period)}
            ratios.append((labels, value))
            spent = sim.budget_spent(value, minute, key)
            if spent is not None:
                remaining.append((labels, 1 - spent))
        if plan.coverage_clock is not None and (covered := sim.coverage(minute, key)) is not None:
            coverage.append((sim.sample_labels(key), covered))
    constants = [
        (OBJECTIVE_RECORD, float(number(plan.objective_ratio))),
        (ERROR_BUDGET_RECORD, budget),
        (PERIOD_DAYS_RECORD, float(number(Decimal(plan.period_s) / 86400))),
    ]
    return [
        _expr(plan.sli_record(plan.period), plan, minute, ratios, sim.unit),
        _expr(PERIOD_BURN_RECORD, plan, minute, [(lb, v / budget) for lb, v in ratios], sim.unit),
        _expr(BUDGET_REMAINING_RECORD, plan, minute, remaining, sim.unit),
        *([_expr(COVERAGE_RECORD, plan, minute, coverage, sim.unit)] if plan.coverage_clock is not None else []),
        *(_expr(name, plan, minute, [(dict(plan.labels), value)], sim.unit) for name, value in constants),
        *([_expr(SLOTH_INFO_RECORD, plan, minute, [(plan.info_labels, 1.0)], sim.unit)] if plan.info_labels else []),
    ]


def _eval_time(at: int, unit: int) -> str:
    return format_duration(at * unit)


def _expr(record: str, plan: SloPlan, minute: int, samples: list[tuple[dict, float]], unit: int = 60) -> dict:
    return {
        "expr": f"{record}{plan.selector}",
        "eval_time": _eval_time(minute, unit),
        "exp_samples": [
            {"labels": series_text(record, labels), "value": value}
            for labels, value in sorted(samples, key=lambda s: sorted(s[0].items()))
        ],
    }


def _interval(seconds: float) -> str:
    return format_duration(int(seconds)) if seconds == int(seconds) else f"{round(seconds * 1000)}ms"


# The engines the expectations must hold on: a test states only what both compute alike.
PROMETHEUS_VERSIONS = (2, 3)
# A recorded value the two engines compute a few bits apart (Prometheus 3 sums where 2 takes an
# incremental mean) is stated rounded, as round(record, to_nearest): still exact, in both. The
# finest of these on which they agree (a value halfway between two steps of one is not of the next).
ROUNDINGS = (1e-12, 1e-11, 1e-10)


def promql_round(value: float, to_nearest: float) -> float:
    """PromQL's round(value, to_nearest), with the engine's float operations."""
    inverse = 1.0 / to_nearest
    return float(math.floor(value * inverse + 0.5)) / inverse


def _rounded(test: dict, to_nearest: float) -> dict:
    return {
        "expr": f"round({test['expr']}, {to_nearest!r})",
        "eval_time": test["eval_time"],
        "exp_samples": [
            {"labels": s["labels"][s["labels"].index("{") :], "value": promql_round(s["value"], to_nearest)}
            for s in test["exp_samples"]
        ],
    }


def _agreed(tests: list[list[dict]], scenario: Scenario) -> list[dict]:
    """The expression tests of each engine, as one list both pass: exact where they agree,
    rounded where they differ in the last bits, left out (and noted) where they differ more."""
    agreed = []
    for i, test in enumerate(tests[0]):
        if all(other[i] == test for other in tests[1:]):
            agreed.append(test)
            continue
        for to_nearest in ROUNDINGS:
            rounded = [_rounded(other[i], to_nearest) for other in tests]
            if all(r == rounded[0] for r in rounded[1:]):
                agreed.append(rounded[0])
                break
        else:
            scenario.left_out.append((test["expr"], test["eval_time"]))
    return agreed


def test_group(plan: SloPlan, scenario: Scenario) -> dict:
    """The scenario's test group. Its expectations hold on every engine in PROMETHEUS_VERSIONS:
    a check on which they differ is left out and noted in `scenario.left_out` (the scenarios are
    designed so that, for the default windows, none is)."""
    sims = [scenario.simulation(plan, version) for version in PROMETHEUS_VERSIONS]
    sim = sims[0]
    interval = scenario.every * scenario.unit if plan.kind in RECORDED_INPUT_KINDS else sim.input_interval
    group: dict = {
        "name": f"{plan.service}/{plan.name}: {scenario.title}",
        "interval": _interval(interval),
        "input_series": input_series(plan, sim),
    }
    alert_tests = []
    for name, checks in scenario.alert_minutes.items():
        for minute in checks:
            expected = [s.alerts(name, minute) for s in sims]
            if any(e != expected[0] for e in expected[1:]):
                scenario.left_out.append((name, _eval_time(minute, scenario.unit)))
                continue
            alert_tests.append(
                {
                    "eval_time": _eval_time(minute, scenario.unit),
                    "alertname": name,
                    "exp_alerts": [
                        {"exp_labels": alert.labels, "exp_annotations": alert.annotations} for alert in expected[0]
                    ],
                }
            )
    if alert_tests:
        group["alert_rule_test"] = alert_tests
    if scenario.expr_minute is not None:
        each = [expr_tests(plan, s, scenario.expr_minute, scenario.expr_records) for s in sims]
        group["promql_expr_test"] = _agreed(each, scenario)
    if scenario.left_out:
        # Said where a reader of the test (and of promtool's output) sees it.
        at = ", ".join(f"{what.split('{')[0]} at {when}" for what, when in scenario.left_out)
        group["name"] += f" (left out, Prometheus 2 and 3 differ there: {at})"
    return group


def files(
    project: ProjectPlan,
    layout: Layout,
    memo: TestGroups | None = None,
    before_generating: Callable[[bool], None] | None = None,
) -> dict[str, str | KeptContent]:
    """Each service's promtool test files, one per evaluation interval; `memo`: the groups earlier
    builds generated, as text, by SLO plan, and the files of each service whose plan is as it was
    (cache.KeptContent: unread, by their digest) (None: every group generated and the files dumped whole,
    the straightforward path the memo's files are byte for byte; tests/test_build_cache.py).
    `before_generating(wait)`: TestFiles.files'.

    Generated whether or not the layout writes them: a spec no test traffic can prove is an
    error either way. Raises TestGenerationErrors naming each service's SLO that has none."""
    with TestFiles(project, layout, memo) as tests:
        return tests.files(before_generating)


class TestFiles:
    """files(), started: the groups of many SLOs (a fresh build's) are generated on every core from
    the moment this is made, while the build makes its other outputs; `files()` collects them.
    Leaving the `with` block stops the processes of a build that fails before it asks."""

    def __init__(self, project: ProjectPlan, layout: Layout, memo: TestGroups | None = None):
        self.project, self.layout, self.memo = project, layout, memo
        self.tests_dir = layout.promtool_tests or OUTPUTS["promtool_tests"][0]
        # The rule file each service's tests load, which their text names: promtool cannot parse
        # MetricsQL, so tests of such a service load the copy of its rules the rules output writes,
        # with a stand-in for each MetricsQL query.
        self.rules_paths = {
            service.service: posixpath.relpath(
                layout.test_rules_path(service.service)
                if any(p.metricsql for p in service.slos)
                else layout.rules_path(service.service),
                self.tests_dir,
            )
            for service in project.services
        }
        self.headers = {service.service: layout.header([service.source]) for service in project.services}
        # A service whose test files a build kept whole (by its plan) needs none of its SLOs' groups.
        self.kept = {} if memo is None else _kept_contents(project, self.rules_paths, self.headers, memo)
        todo = [p for service in project.services if service.service not in self.kept for p in service.slos]
        self.made, self.todo = _looked_up(todo, memo)
        self.runs = _Runs(self.todo) if memo is not None and len(self.todo) >= PARALLEL_FROM else None

    def __enter__(self) -> TestFiles:
        return self

    def __exit__(self, *exc) -> None:
        if self.runs is not None:
            self.runs.stop()

    def files(self, before_generating: Callable[[bool], None] | None = None) -> dict[str, str | KeptContent]:
        """The test files. `before_generating(wait)`: called before SLOs' tests are generated here (it
        may raise: the build's errors first), or their runs on every core are waited for: wait true
        then, false before each SLO's generated here, and true once those are made (before any
        group is kept)."""
        project, layout, memo = self.project, self.layout, self.memo
        before = before_generating or (lambda wait: None)
        if self.runs is not None:
            before(True)
            results = self.runs.results()
        else:
            results = []
            for plan in self.todo:
                before(False)
                results.append(_made(plan, memo is not None))
            if results:
                before(True)  # their groups are kept once the verdict is in: a failed build keeps none
        made = _with_results(self.made, self.todo, results, memo)
        found: dict[str, str | KeptContent] = {}
        problems: list[TestGenerationError] = []
        for service in project.services:
            rules_path, header = self.rules_paths[service.service], self.headers[service.service]
            if service.service in self.kept:
                contents = self.kept[service.service]
            else:
                try:
                    contents = _contents(service, made, rules_path, header, memo)
                except TestGenerationError as err:
                    err.service = service.service
                    problems.append(err)
                    continue
                if memo is not None:
                    kind = _contents_kind(rules_path, header)
                    by_interval = {str(n): content for n, content in contents.items()}
                    memo.services.put_contents(kind, service, by_interval, texts=False)  # made again from the groups
            if layout.promtool_tests:
                for every, content in contents.items():
                    found[layout.tests_path(service.service, every)] = content
        if problems:
            raise TestGenerationErrors(problems)
        return found


def _contents(
    service: ServicePlan,
    made: dict[int, list | TestGenerationError],
    rules_path: str,
    header: str,
    memo: TestGroups | None,
) -> dict[int, str]:
    """A service's test files as written (header first), by evaluation interval, from its SLOs' groups."""
    texts = _texts(_by_interval(list(service.slos), made), rules_path, list(service.rule_groups), memo is not None)
    return {every: header + text for every, text in texts.items()}


def _contents_kind(rules_path: str, header: str) -> str:
    """What a service's test files read besides its plan: the rule file they load (by path), and their header."""
    return f"promtool tests\0{rules_path}\0{header}"


def _kept_contents(
    project: ProjectPlan, rules_paths: dict[str, str], headers: dict[str, str], memo: TestGroups
) -> dict[str, dict[int, str | KeptContent]]:
    """The test files earlier builds made of each service whose plan is as it was, by evaluation
    interval, unread (cache.KeptContent); the groups they were joined from stay kept beside them
    (which make them again, should the kept files be gone by the time one is read)."""
    found = {}
    for service in project.services:
        rules_path, header = rules_paths[service.service], headers[service.service]

        def remake(service=service, rules_path=rules_path, header=header) -> dict[str, str]:
            contents = _contents(service, _generated(list(service.slos), memo), rules_path, header, memo)
            return {str(every): content for every, content in contents.items()}

        contents = memo.services.find_contents(_contents_kind(rules_path, header), service, remake)
        if contents is not None and all(every.isdecimal() for every in contents):  # (int() reads each)
            found[service.service] = {int(every): content for every, content in contents.items()}
            for plan in service.slos:
                memo.still_used(plan)
    return found


def _generation_order(plan: SloPlan) -> tuple:
    """What decides a plan's scenarios besides its shape, as text: an order that puts alike SLOs together."""
    alerts = tuple(alert_shape(a) for a in plan.alerts())
    return repr((plan_shape(plan), alerts, plan.traffic_selector, plan.threshold_ms, plan.scrape_s))


def _plan_groups(plan: SloPlan) -> list[tuple[int, dict]]:
    """One SLO's test groups, each with its evaluation interval (seconds)."""
    return [(scenario.every * scenario.unit, test_group(plan, scenario)) for scenario in scenarios(plan)]


def _generated(plans: list[SloPlan], memo: TestGroups | None) -> dict[int, list | TestGenerationError]:
    """Each plan's groups (by id), or the error it raised: kept in `memo` from an earlier build, or
    generated (and kept), as dicts without a memo and as text dumped group by group with one."""
    made, todo = _looked_up(plans, memo)
    return _with_results(made, todo, [_made(plan, memo is not None) for plan in todo], memo)


def _looked_up(plans: list[SloPlan], memo: TestGroups | None) -> tuple[dict[int, list], list[SloPlan]]:
    """The groups `memo` keeps of these plans (by id), and the plans it has none of, to generate:
    in _generation_order across every file, SLOs of one shape one after another, so the
    simulations they share are still kept (simulation.CORE_VALUES_KEPT) wherever their files are."""
    made: dict[int, list] = {}
    todo = []
    for plan in sorted(plans, key=_generation_order):
        found = memo.get(plan) if memo is not None else None
        if found is None:
            todo.append(plan)
        else:
            made[id(plan)] = found
    return made, todo


def _with_results(
    made: dict[int, list], todo: list[SloPlan], results: list, memo: TestGroups | None
) -> dict[int, list | TestGenerationError]:
    """`made` with each plan of `todo`'s groups (_made's result, kept in `memo`) or its error."""
    made = dict(made)
    for plan, result in zip(todo, results, strict=True):
        if isinstance(result, tuple):  # (path, message): the error, as it crossed from a process
            result = TestGenerationError(*result)
            result.slo = plan.name
        elif memo is not None:
            memo.put(plan, result)
        made[id(plan)] = result
    return made


def _made(plan: SloPlan, dumped: bool) -> list | tuple:
    """One plan's groups (each dumped, if `dumped`), or its TestGenerationError as (path, message)."""
    try:
        groups = _plan_groups(plan)
    except TestGenerationError as err:
        return (err.path, str(err))
    return [(every, dump_yaml([group])) for every, group in groups] if dumped else groups


# Below this many SLOs to generate, starting processes costs more than they save (one SLO
# changed: its tests alone). The results are the same text whoever makes them.
PARALLEL_FROM = 40


class _Runs:
    """_made(plan, dumped=True) of each plan, by forked processes (one per core) started at once;
    `results()` waits for them (with one core, or no fork, they are made here when asked). The
    plans are cut at shape boundaries into chunks, several per process, each process taking the
    next chunk as it is free: shapes cost unlike amounts (a process given half the SLOs by count
    finished 2.2 s of CPU before the other at 1,000 SLOs, its core idle meanwhile), and a shape
    stays in one chunk so its SLOs share their simulation. A process that dies (out of memory)
    leaves the chunk it was making to this one: the same text, later. `stop()` ends them."""

    def __init__(self, todo: list[SloPlan]):
        self.todo = todo
        workers = min(_cores(), 8)
        # (The plans come in _generation_order, which puts each plan_shape's SLOs together: the
        # simulations they share are kept by plan_shape and traffic.)
        self.chunks = _at_shape_boundaries([plan_shape(plan) for plan in todo], workers * CHUNKS_PER_PROCESS)
        self.started: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        self._take: int | None = None  # the read end of the chunks' numbers
        if workers < 2 or len(self.chunks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("fork")  # the plans are inherited, never pickled
        # The chunks' numbers, 4 bytes each, in a pipe each process reads the next one from: a
        # process killed while it takes one holds nothing the others wait for (a lock would).
        self._take, give = os.pipe()
        os.write(give, b"".join(at.to_bytes(4, "little") for at in range(len(self.chunks))))  # < PIPE_BUF
        os.close(give)
        try:
            for _ in range(min(workers, len(self.chunks))):
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=self._work, args=(send,), daemon=True)
                process.start()
                send.close()  # the child's end: a child that dies ends the pipe
                self.started.append((process, receive))
        except BaseException:
            self.stop()
            raise

    def _work(self, send: Connection) -> None:
        """In a forked process: chunks, taken in turn, each sent once made, by a thread: the build
        reads them once it has made its other outputs (seconds in), and a chunk's MBs wait on the
        full pipe till then, which would keep this process from making the next one."""
        sending: queue.SimpleQueue = queue.SimpleQueue()

        def sender() -> None:
            while (chunk := sending.get()) is not None:
                send.send(chunk)
            send.close()

        thread = threading.Thread(target=sender)
        thread.start()
        try:
            while taken := os.read(self._take, 4):  # (4 bytes of a multiple of 4: one whole number each)
                at = int.from_bytes(taken, "little")
                first, end = self.chunks[at]
                sending.put((at, [_made(plan, True) for plan in self.todo[first:end]]))
        finally:  # (a process ends once its threads have: raising here, it would wait on the sender)
            sending.put(None)
            thread.join()

    def results(self) -> list:
        received: dict[int, list] = {}
        waiting = {receive: process for process, receive in self.started}
        while waiting:
            for receive in connection.wait(list(waiting)):  # whichever sent: none waits on a full pipe
                try:
                    at, made = receive.recv()
                    received[at] = made
                except (EOFError, OSError):  # done, or died (its chunk is made below)
                    receive.close()
                    waiting.pop(receive).join()
        self.started = []
        self._close_take()
        made = []
        for at, (first, end) in enumerate(self.chunks):
            made += received[at] if at in received else [_made(plan, True) for plan in self.todo[first:end]]
        return made

    def stop(self) -> None:
        for process, receive in self.started:
            if process.is_alive():
                process.kill()
            process.join()
            receive.close()
        self.started = []
        self._close_take()

    def _close_take(self) -> None:
        if self._take is not None:
            os.close(self._take)
            self._take = None


# Chunks of the SLOs to generate per process: enough that the last ones even out the processes'
# ends, few enough that sending each costs nothing.
CHUNKS_PER_PROCESS = 8


def _at_shape_boundaries(keys: list, pieces: int) -> list[tuple[int, int]]:
    """(first, end) of about `pieces` runs of equal length, each cut where the key changes."""
    cuts = [0]
    for n in range(1, pieces):
        cut = max(len(keys) * n // pieces, cuts[-1])
        while 0 < cut < len(keys) and keys[cut] == keys[cut - 1]:  # a shape stays in one run
            cut += 1
        cuts.append(cut)
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], len(keys)], strict=True) if b > a]


def _cores() -> int:
    """The cores this process may run on (where the system says; else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _by_interval(plans: list[SloPlan], made: dict[int, list | TestGenerationError]) -> dict[int, list]:
    """The groups `made` of a file's SLOs, by evaluation interval, in the SLOs' order (one SLO's in
    its scenarios' order); raises the error of the file's first SLO without tests."""
    for plan in plans:
        if isinstance(failed := made[id(plan)], TestGenerationError):
            raise failed
    found: dict[int, list] = {}
    for plan in plans:
        for every, group in made[id(plan)]:
            found.setdefault(every, []).append(group)
    return dict(sorted(found.items()))


def _head(rules_path: str, every: int, group_order: list[str]) -> dict:
    return {
        "rule_files": [rules_path],
        "evaluation_interval": format_duration(every),
        # Record before alerting at each evaluation, so an alert reads the ratio
        # of the same instant (promtool's order is otherwise unspecified).
        "group_eval_order": group_order,
    }


def test_files(plans: list[SloPlan], rules_path: str, group_order: list[str]) -> dict[int, dict]:
    """promtool test files keyed by their evaluation interval (seconds)."""
    return {
        every: {**_head(rules_path, every, group_order), "tests": tests}
        for every, tests in _by_interval(plans, _generated(plans, None)).items()
    }


def _texts(groups: dict[int, list], rules_path: str, group_order: list[str], dumped: bool) -> dict[int, str]:
    """The test files as text. Groups `dumped` one by one: a file is its head, then `tests:` and
    each group as the item of a block sequence, which is how the whole file dumps."""
    if not dumped:
        return {
            every: dump_yaml({**_head(rules_path, every, group_order), "tests": tests})
            for every, tests in groups.items()
        }
    return {
        every: dump_yaml(_head(rules_path, every, group_order)) + "tests:\n" + _joined(texts)
        for every, texts in groups.items()
    }


# A document whose last string ends in line breaks (a `|+` block) ends with this marker: a
# group dumped alone has it, and in the middle of a file it would end the file for promtool.
_DOCUMENT_END = "...\n"


def _joined(texts: list[str]) -> str:
    """Groups dumped one by one, as the items of one sequence: the marker stays only at the end."""
    return "".join(text.removesuffix(_DOCUMENT_END) for text in texts[:-1]) + texts[-1]
