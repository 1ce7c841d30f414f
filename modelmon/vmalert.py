"""Running the real vmalert (Debian's victoria-metrics package) on MetricsQL queries: the SLIs of
Sloth's validate_victoria_metrics plugin, which promtool cannot parse."""

from __future__ import annotations

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
# vmalert's fatal line before the parser's message, e.g. `invalid expression for rule "g"."r": bad
# metricsql expr: "...", err: ...`: the message after `err: ` is the parser's own.
_PARSER_MESSAGE = ", err: "


class VmalertMissing(RuntimeError):
    pass


def find_vmalert() -> str:
    return binaries.find("vmalert", "MODELMON_VMALERT", VmalertMissing, INSTALL_HINT)


def query_error(query: str) -> str | None:
    """What vmalert's MetricsQL parser says of `query` (as a recording rule's expression), None when
    it accepts it. vmalert stops at a file's first error, so each query is checked alone."""
    rules = dump_yaml({"groups": [{"name": "check", "rules": [{"record": "check", "expr": query}]}]})
    with tempfile.TemporaryDirectory(prefix="modelmon-vmalert-") as scratch:
        path = Path(scratch) / "rules.yml"
        path.write_text(rules, encoding="utf-8")
        done = subprocess.run(
            [find_vmalert(), "-dryRun", f"-rule={path}", "-loggerLevel=ERROR"],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=120,
        )
    if done.returncode == 0:
        return None
    output = (done.stderr + done.stdout).strip()
    last = output.splitlines()[-1] if output else f"vmalert exited with {done.returncode}"
    return last.rsplit(_PARSER_MESSAGE, 1)[-1].strip()
