"""One pin list (tools/versions.toml): the compose images, the tool builds and the docs agree with it,
and the bootstrap reuses what it built and says what is missing without Go."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stack import processes
from tests import binaries
from tools import build as tools

REPO = Path(__file__).resolve().parent.parent
BUILD = [sys.executable, str(REPO / "tools" / "build.py")]


def test_the_compose_images_are_the_pinned_versions():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    images = {}
    for service in compose["services"].values():
        if "image" in service:
            name, tag = service["image"].rsplit(":", 1)
            images[name] = tag
    pins = tools.pins()
    for tool in ("prometheus", "alertmanager", "grafana"):
        assert images[pins[tool]["image"]] == pins[tool]["tag"], tool
        assert pins[tool]["tag"].removeprefix("v") == pins[tool]["version"], tool


def test_every_module_version_is_the_version_it_builds():
    """Prometheus 3.y.z is the module v0.3yy.z; the others are their release tags."""
    pins = tools.pins()
    major, minor, patch = pins["prometheus"]["version"].split(".")
    assert pins["prometheus"]["module_version"] == f"v0.{major}{int(minor):02d}.{patch}"
    for tool in ("alertmanager", "sloth", "thanos"):
        assert pins[tool]["module_version"] == f"v{pins[tool]['version']}", tool
    assert pins["mimirtool"]["module_version"].endswith(pins["mimirtool"]["version"].split("@")[1])


# Every version of a pinned tool that the docs name, with the words around it.
MENTIONS = {
    "prometheus": re.compile(r"Prometheus:?\s+v?(3\.\d+(?:\.\d+)?)|prom/prometheus:v([\d.]+)"),
    "alertmanager": re.compile(r"Alertmanager:?\s+v?(0\.(?!25)\d+(?:\.\d+)?)|prom/alertmanager:v([\d.]+)"),
    "grafana": re.compile(r"Grafana:?\s+v?(1\d\.\d+(?:\.\d+)?)|grafana/grafana:([\d.]+)"),
    "sloth": re.compile(r"Sloth:?\s+v?(0\.\d+(?:\.\d+)?)"),
    "thanos": re.compile(r"Thanos[^|\n]{0,40}?\(?(0\.\d+\.\d+)"),
}


def documents() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "docker-compose.yml",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "bench").glob("*.md")),
    ]


def test_the_docs_name_the_pinned_versions():
    pins = tools.pins()
    seen = {tool: 0 for tool in MENTIONS}
    for path in documents():
        text = path.read_text()
        for tool, pattern in MENTIONS.items():
            for match in pattern.finditer(text):
                named = next(g for g in match.groups() if g)
                assert pins[tool]["version"].startswith(named), f"{path.name}: {match.group(0)!r} is not {pins[tool]}"
                seen[tool] += 1
    assert all(seen.values()), seen  # each pinned tool is named somewhere, so the check checks something


@pytest.mark.parametrize("binary", ["prometheus", "promtool", "alertmanager", "amtool", "thanos"])
def test_the_pinned_binaries_report_the_pinned_version(binary):
    """They run, and say the pin's version (set when built): a binary left from an older pin fails."""
    out = subprocess.run([binaries.pinned(binary), "--version"], capture_output=True, text=True, check=True)
    assert f"version {tools.version(binary)}" in out.stdout + out.stderr


def test_the_stack_runs_the_pinned_builds():
    assert binaries.pinned("prometheus") == processes.PROMETHEUS
    assert binaries.pinned("alertmanager") == processes.ALERTMANAGER


def test_built_tools_are_reused():
    needed = [b for b, tool in tools.binaries().items() if tool in tools.needed_for("test")]
    assert set(needed) == {"prometheus", "promtool", "alertmanager", "amtool", "mimirtool", "thanos", "sloth"}
    for binary in needed:
        binaries.pinned(binary)
    result = subprocess.run([*BUILD, "--for", "test"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stdout + result.stderr


def test_without_go_the_bootstrap_names_what_is_missing_and_the_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMON_BIN_")}
    env |= {"MODELMON_TOOLS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([*BUILD, "promtool"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 1
    minimum = ".".join(map(str, tools.GO_MINIMUM))
    assert f"missing promtool, and building them needs Go {minimum} or newer" in result.stderr
    assert "MODELMON_BIN_PROMTOOL" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing half-built


def test_a_binary_given_by_its_variable_is_used_and_never_built(tmp_path):
    env = {**os.environ, "MODELMON_TOOLS": str(tmp_path), "MODELMON_BIN_PROMTOOL": str(tmp_path / "nothing")}
    result = subprocess.run([*BUILD, "promtool"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 1
    assert f"MODELMON_BIN_PROMTOOL={tmp_path / 'nothing'} is not an executable file" in result.stderr
    env["MODELMON_BIN_PROMTOOL"] = binaries.pinned("promtool")
    listed = subprocess.run([*BUILD, "--list"], capture_output=True, text=True, timeout=60, env=env, check=True)
    [line] = [line for line in listed.stdout.splitlines() if line.startswith("promtool ")]
    assert "present" in line and env["MODELMON_BIN_PROMTOOL"] in line
    # Linked into the tools folder, so whatever finds promtool on PATH runs the given one.
    used = subprocess.run([*BUILD, "promtool"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert used.returncode == 0 and "building" not in used.stdout, used.stdout + used.stderr
    assert (tmp_path / "promtool").resolve() == Path(env["MODELMON_BIN_PROMTOOL"]).resolve()
