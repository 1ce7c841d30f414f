"""Running the real vmalert (Debian's victoria-metrics package) on MetricsQL queries: the SLIs of
Sloth's validate_victoria_metrics plugin, which promtool cannot parse."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from modelmon import binaries
from modelmon.serialize import dump_yaml

INSTALL_HINT = (
    "vmalert not found: it checks the MetricsQL queries of SLOs with Sloth's validate_victoria_metrics "
    "plugin; install Debian's victoria-metrics package (apt-get install -y victoria-metrics), or point "
    "MODELMON_VMALERT at a vmalert binary"
)
# vmalert's fatal output names every group it could not read, one line each: `invalid group "q3" in
# file "...": invalid expression for rule "q3"."check": bad metricsql expr: "<the query>", err: <the
# parser's message>`. Each query goes in a group of its own, so one run reports every bad query.
_GROUP_ERROR = re.compile(
    r'^invalid group "q(?P<index>\d+)" in file .*?: bad \w+ expr: "(?:[^"\\]|\\.)*", err: (?P<message>.*)$'
)
TIMEOUT_S = 120


class VmalertMissing(RuntimeError):
    pass


class VmalertFailed(RuntimeError):
    """vmalert did not say whether the queries parse (a broken binary, another program, a hang)."""


def find_vmalert() -> str:
    return binaries.find("vmalert", "MODELMON_VMALERT", VmalertMissing, INSTALL_HINT)


def query_errors(queries: list[str]) -> dict[int, str]:
    """What vmalert's MetricsQL parser says of each query it refuses (as a recording rule's
    expression), by index in `queries`; empty when it accepts them all. One run for them all."""
    if not queries:
        return {}
    groups = [{"name": f"q{i}", "rules": [{"record": "check", "expr": query}]} for i, query in enumerate(queries)]
    binary = find_vmalert()
    with tempfile.TemporaryDirectory(prefix="modelmon-vmalert-") as scratch:
        path = Path(scratch) / "rules.yml"
        path.write_text(dump_yaml({"groups": groups}), encoding="utf-8")
        try:
            done = subprocess.run(
                [binary, "-dryRun", f"-rule={path}", "-loggerLevel=ERROR"],
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise VmalertFailed(f"{binary} -dryRun did not finish in {TIMEOUT_S} s") from None
    if done.returncode == 0:
        return {}
    output = (done.stderr + done.stdout).strip()
    found = {}
    for line in output.splitlines():
        # The first line carries vmalert's log prefix and `failed to parse [...]: errors(n): `.
        line = line[line.find("invalid group ") :] if "invalid group " in line else line
        if (match := _GROUP_ERROR.match(line)) is not None:
            found[int(match["index"])] = match["message"].strip()
    if not found:
        last = output.splitlines()[-1] if output else ""
        raise VmalertFailed(f"{binary} -dryRun exited with {done.returncode} without naming a query: {last}".strip())
    return found
