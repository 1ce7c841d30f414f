"""Running the real promtool, and reading its output back into plain words."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelmon import binaries
from modelmon.durations import parse_duration

INSTALL_HINT = (
    "promtool not found: install Debian's prometheus package (apt-get install -y prometheus), "
    "or point MODELMON_PROMTOOL at a promtool binary"
)


class PromtoolMissing(RuntimeError):
    pass


def find_promtool() -> str:
    """promtool from $MODELMON_PROMTOOL, else from PATH."""
    return binaries.find("promtool", "MODELMON_PROMTOOL", PromtoolMissing, INSTALL_HINT)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # errors="replace": promtool quotes the rules it refuses, whose label values may hold any bytes.
    return subprocess.run(
        [find_promtool(), *args], cwd=cwd, capture_output=True, text=True, errors="replace", check=False, timeout=900
    )


@dataclass(frozen=True)
class RuleProblem:
    group: str
    index: int  # the rule's place in its group, from 1 as promtool counts
    rule: str
    message: str


_RULE_PROBLEM = re.compile(r'group "(?P<group>[^"]+)", rule (?P<index>\d+), "(?P<rule>[^"]*)": (?P<message>.*)')


def check_rules(paths: list[Path]) -> tuple[bool, list[RuleProblem], str]:
    """`promtool check rules`: success, the problems it names per group and rule, raw output."""
    with RulesCheck(paths) as check:
        return check.result()


class RulesCheck:
    """`promtool check rules` in a process of its own, started at once: the caller goes on (a
    build makes its other outputs meanwhile) and `result()` waits for the verdict, check_rules'.
    Leaving the `with` block stops a check no one waited for. The files must stay until then."""

    def __init__(self, paths: list[Path]):
        # errors="replace": promtool quotes the rules it refuses, whose label values may hold any bytes.
        self._process = subprocess.Popen(
            [find_promtool(), "check", "rules", *map(str, paths)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self._result: tuple[bool, list[RuleProblem], str] | None = None

    def result(self) -> tuple[bool, list[RuleProblem], str]:
        if self._result is None:
            try:
                stdout, stderr = self._process.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                self.stop()
                raise
            output = stdout + stderr
            problems = [
                RuleProblem(m["group"], int(m["index"]), m["rule"], m["message"])
                for m in _RULE_PROBLEM.finditer(output)
            ]
            self._result = (self._process.returncode == 0, problems, output)
        return self._result

    def finished(self) -> bool:
        """Whether result() would not wait."""
        return self._result is not None or self._process.poll() is not None

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()

    def __enter__(self) -> RulesCheck:
        return self

    def __exit__(self, *exc) -> None:
        if self._result is None:
            self.stop()


@dataclass
class TestFailure:
    """One failed expectation of a promtool test group, in words."""

    file: str
    group: str
    details: list[str]
    query: tuple[str, str] | None = None  # (expr, eval time) of a failed promql_expr_test

    def __str__(self) -> str:
        lines = [f"FAILED {self.group}  ({self.file})"]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)


def test_rules(paths: list[Path], cwd: Path | None = None) -> tuple[bool, list[TestFailure], str]:
    """`promtool test rules`, its failures read back per test group."""
    result = run("test", "rules", *map(str, paths), cwd=cwd)
    output = result.stdout + result.stderr
    failures = parse_test_output(output)
    resolve_groups(failures, cwd or Path.cwd(), [str(p) for p in paths])
    return result.returncode == 0, failures, output


def resolve_groups(failures: list[TestFailure], cwd: Path, paths: list[str] | None = None) -> None:
    """Name the test group of each failed query from the test file it came from. promtool 2
    prints each file's name before its failures; 3 does not, so its failures are looked up
    in every file tested (`paths`)."""
    groups_in: dict[str, list[str]] = {}
    for file in paths or []:
        try:
            groups_in[file] = [g.get("name", "") for g in _tests_of(cwd / file)]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            groups_in[file] = []
    for failure in failures:
        if failure.group and not failure.file:
            failure.file = " or ".join(f for f, names in groups_in.items() if failure.group in names)
        if failure.group or failure.query is None:
            continue
        expr, time = failure.query
        found: dict[str, str] = {}
        for file in [failure.file] if failure.file else paths or []:
            try:
                tests = _tests_of(cwd / file)
            except (OSError, KeyError, TypeError, yaml.YAMLError):
                tests = []
            for group in tests:
                for check in group.get("promql_expr_test", []):
                    if check["expr"] == expr and _same_time(check["eval_time"], time):
                        found.setdefault(group.get("name", ""), file)
        failure.group = " or ".join(found) or "(test group not found)"
        if found and not failure.file:
            failure.file = " or ".join(dict.fromkeys(found.values()))


def _tests_of(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]


def _same_time(written: str, printed: str) -> bool:
    # promtool prints Go durations (6h30m0s); the files hold 6h30m.
    try:
        return parse_duration(written) == parse_duration(printed)
    except ValueError:
        return False


_FILE = re.compile(r"^Unit Testing:\s+(\S+)")
_GROUP = re.compile(r"^\s+name:\s+(.*?),?\s*$")
_ALERT = re.compile(r"^\s+alertname:\s*(?P<alert>[^,]+), time:\s*(?P<time>[^,\s]+)")
_EXPR = re.compile(r"^\s+expr:\s*(?P<expr>.*?), time:\s*(?P<time>[^,\s]+)")
_BLOCK = re.compile(r"^\s+(?P<side>exp|got):\s*(?P<rest>.*?),?\s*$")
_LABELS = re.compile(r"Labels:(\{.*?\})\s*$")


def parse_test_output(output: str) -> list[TestFailure]:
    """promtool's FAILED blocks, each turned into: which alert or query, when, expected, got."""
    failures: list[TestFailure] = []
    current_file, subject = "", ""
    current: TestFailure | None = None
    sides: dict[str, list[str]] = {}
    side = ""

    def flush() -> None:
        if current is not None and subject and sides:
            current.details.append(f"{subject}: expected {_plain(sides.get('exp', []))}")
            current.details.append(f"{' ' * len(subject)}  but got {_plain(sides.get('got', []))}")
        sides.clear()

    for line in output.splitlines():
        if m := _FILE.match(line):
            flush()
            current_file = m.group(1)
        elif m := _ALERT.match(line):
            flush()
            subject = f"alert {m['alert'].strip()} at {m['time']}"
        elif m := _EXPR.match(line):
            flush()
            # promtool names the group of a failed alert check, not of a failed query:
            # the query and time find it in the test file (resolve_groups).
            expr = m["expr"].strip('"').replace('\\"', '"')
            current = TestFailure(current_file, "", [], query=(expr, m["time"]))
            failures.append(current)
            subject = f"query {expr} at {m['time']}"
        elif m := _BLOCK.match(line):
            side = m["side"]
            sides[side] = [] if m["rest"] in ("[", "[]", "") else [m["rest"]]
        elif (m := _LABELS.search(line)) and side:
            sides[side].append(m.group(1))
        elif m := _GROUP.match(line):
            flush()
            subject = ""
            current = TestFailure(current_file, m.group(1), [])
            failures.append(current)
        elif current is not None and line.strip().startswith(("rule:", "err:")):
            flush()
            subject = ""
            current.details.append(line.strip())
    flush()
    return failures


def _plain(items: list[str]) -> str:
    if not items:
        return "nothing (no firing alert, no sample)"
    return "; ".join(items)
