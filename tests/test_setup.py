"""The README's two commands set up a fresh Debian machine: each installs every tool it runs.

`make rules` proves the rules with promtool and the Alertmanager config with amtool, so it
must install both; `make test` also runs Prometheus, Alertmanager and vmalert. CI runs the
same commands and nothing else, so a missing install step fails there, not on a user's
first run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENSURE = "scripts/ensure-debian-packages.sh"


def dry_run(target: str, **env: str) -> list[str]:
    """The commands `make TARGET` would run, with the virtual environment taken as made."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELMON_")} | env
    result = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target], cwd=REPO, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def installed_by(target: str, **env: str) -> set[str]:
    """command:package pairs the target has ensure-debian-packages.sh install."""
    return {pair for line in dry_run(target, **env) if ENSURE in line for pair in line.split(ENSURE, 1)[1].split()}


@pytest.mark.parametrize("target", ["rules", "check"])
def test_make_rules_installs_both_tools_the_build_runs(target):
    assert {"promtool:prometheus", "amtool:prometheus-alertmanager"} <= installed_by(target)


def test_a_tool_given_by_its_variable_is_not_installed():
    assert installed_by("rules", MODELMON_AMTOOL="/opt/amtool") == {"promtool:prometheus"}
    assert installed_by("rules", MODELMON_PROMTOOL="/opt/promtool", MODELMON_AMTOOL="/opt/amtool") == set()


def test_make_test_installs_every_binary_the_tests_start():
    # Debian's by path: the pinned builds come first on PATH, and the tests run on both.
    assert {
        "/usr/bin/promtool:prometheus",
        "/usr/bin/prometheus-alertmanager:prometheus-alertmanager",
        "vmalert:victoria-metrics",
    } <= installed_by("test")
    # The pinned ones (tools/versions.toml) are built before pytest runs.
    commands = dry_run("test")
    built = next(i for i, line in enumerate(commands) if "tools/build.py --for test" in line)
    assert built < next(i for i, line in enumerate(commands) if "pytest" in line)


def test_ci_runs_the_readme_commands_and_installs_nothing_itself():
    script = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "apt-get" not in script and "pip install" not in script
    assert commands[-2:] == ["make check", "make test"]
    readme = (REPO / "README.md").read_text()
    assert "make rules" in readme and "make test" in readme


def test_without_root_the_setup_says_exactly_what_to_install():
    # setpriv (util-linux, on every Debian) runs the script as nobody, as a user without root would.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ENSURE, "no-such-tool:no-such-package"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "missing: no-such-package. Install them with: sudo apt-get install -y no-such-package" in result.stderr
