"""Running the real promtool, and reading its output back into plain words."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "promtool not found: install Debian's prometheus package (apt-get install -y prometheus), "
    "or point MODELMON_PROMTOOL at a promtool binary"
)


class PromtoolMissing(RuntimeError):
    pass


def find_promtool() -> str:
    """promtool from $MODELMON_PROMTOOL, else from PATH."""
    configured = os.environ.get("MODELMON_PROMTOOL")
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise PromtoolMissing(f"MODELMON_PROMTOOL={configured} is not an executable file")
        return configured
    found = shutil.which("promtool")
    if not found:
        raise PromtoolMissing(INSTALL_HINT)
    return found


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([find_promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=900)


@dataclass(frozen=True)
class RuleProblem:
    group: str
    rule: str
    message: str


_RULE_PROBLEM = re.compile(r'group "(?P<group>[^"]+)", rule \d+, "?(?P<rule>[^":]*)"?: (?P<message>.*)')


def check_rules(paths: list[Path]) -> tuple[bool, list[RuleProblem], str]:
    """`promtool check rules`: success, the problems it names per group and rule, raw output."""
    result = run("check", "rules", *map(str, paths))
    output = result.stdout + result.stderr
    problems = [RuleProblem(**m.groupdict()) for m in _RULE_PROBLEM.finditer(output)]
    return result.returncode == 0, problems, output


@dataclass
class TestFailure:
    """One failed expectation of a promtool test group, in words."""

    file: str
    group: str
    details: list[str]

    def __str__(self) -> str:
        lines = [f"FAILED {self.group}  ({self.file})"]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)


def test_rules(paths: list[Path], cwd: Path | None = None) -> tuple[bool, list[TestFailure], str]:
    """`promtool test rules`, its failures read back per test group."""
    result = run("test", "rules", *map(str, paths), cwd=cwd)
    output = result.stdout + result.stderr
    return result.returncode == 0, parse_test_output(output), output


_FILE = re.compile(r"^Unit Testing:\s+(\S+)")
_GROUP = re.compile(r"^\s+name:\s+(.*?),?$")
_ALERT = re.compile(r"^\s+alertname:\s*(?P<alert>[^,]+), time:\s*(?P<time>[^,]+),?$")
_EXPR = re.compile(r"^\s+expr:\s*(?P<expr>.*?), time:\s*(?P<time>[^,]+),?$")
_EXP = re.compile(r"^\s+exp:\s*(?P<value>.*?),?$")
_GOT = re.compile(r"^\s+got:\s*(?P<value>.*)$")


def parse_test_output(output: str) -> list[TestFailure]:
    """promtool's FAILED blocks, each turned into: which alert or query, when, expected, got."""
    failures: list[TestFailure] = []
    current_file = ""
    current: TestFailure | None = None
    subject = ""
    for line in output.splitlines():
        if m := _FILE.match(line):
            current_file = m.group(1)
        elif m := _GROUP.match(line):
            current = TestFailure(current_file, m.group(1), [])
            failures.append(current)
        elif current is None:
            continue
        elif m := _ALERT.match(line):
            subject = f"alert {m['alert']} at {m['time']}"
        elif m := _EXPR.match(line):
            subject = f"query {m['expr']} at {m['time']}"
        elif m := _EXP.match(line):
            current.details.append(f"{subject}: expected {_plain(m['value'])}")
        elif m := _GOT.match(line):
            current.details.append(f"{' ' * len(subject)}  but got {_plain(m['value'])}")
        elif line.strip() and not line.strip().startswith("FAILED"):
            current.details.append(line.strip())
    return failures


def _plain(value: str) -> str:
    value = value.strip()
    if value in ("[]", "(no alerts)", "nil"):
        return "no firing alert" if value != "nil" else "no sample"
    return value
