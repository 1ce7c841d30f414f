"""Running the real amtool (Debian's prometheus-alertmanager package) on generated configs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelmon import binaries
from modelmon.conventions import escape

INSTALL_HINT = (
    "amtool not found: install Debian's prometheus-alertmanager package "
    "(apt-get install -y prometheus-alertmanager), or point MODELMON_AMTOOL at an amtool binary"
)


class AmtoolMissing(RuntimeError):
    pass


def find_amtool() -> str:
    return binaries.find("amtool", "MODELMON_AMTOOL", AmtoolMissing, INSTALL_HINT)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [find_amtool(), *args], capture_output=True, text=True, errors="replace", check=False, timeout=120
    )


def check_config(path: Path) -> tuple[bool, str]:
    result = run("check-config", str(path))
    return result.returncode == 0, result.stdout + result.stderr


def routes_test(config: Path, labels: dict[str, str]) -> list[str]:
    """The receivers Alertmanager's routing tree picks for an alert with these labels."""
    # Quoted, so a value with quotes or commas is one label value (both amtools read this form).
    matchers = (f'{name}="{escape(value)}"' for name, value in labels.items())
    result = run("config", "routes", "test", f"--config.file={config}", *matchers)
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    return result.stdout.strip().split(",")
