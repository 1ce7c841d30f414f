"""The two sets of Prometheus binaries the tests run on: the pinned builds of tools/versions.toml
(what docker compose deploys) and Debian's packages (Prometheus 2.42, Alertmanager 0.25).

A missing binary fails the test that needs it, never skips it: `make test` builds the pinned
ones first (`make tools`) and installs Debian's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import build as tools

# Debian's packages, by path: the pinned builds come first on PATH.
DEBIAN = {
    "prometheus": "/usr/bin/prometheus",
    "promtool": "/usr/bin/promtool",
    "alertmanager": "/usr/bin/prometheus-alertmanager",
    "amtool": "/usr/bin/amtool",
}
# The versions Debian 12 (bookworm) ships: the machines' Debian (the tests name which engine ran).
DEBIAN_VERSIONS = {"prometheus": "2.42", "promtool": "2.42", "alertmanager": "0.25", "amtool": "0.25"}


def pinned(binary: str) -> str:
    """The pinned build of `binary`, or a failure saying how to get it."""
    found = tools.installed(binary)
    if found is None:
        pytest.fail(
            f"{binary} {tools.version(binary)} is not built: run `make tools` (or point "
            f"{tools.env_variable(binary)} at a release binary of that version)"
        )
    return found


def debian(binary: str) -> str:
    path = DEBIAN[binary]
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: apt-get install -y prometheus prometheus-alertmanager")
    return path


def both(binary: str) -> list:
    """pytest parameters for the two builds of `binary`: ids pinned-<version> and debian-<version>."""
    return [
        pytest.param(lambda: pinned(binary), id=f"pinned-{tools.version(binary)}"),
        pytest.param(lambda: debian(binary), id=f"debian-{DEBIAN_VERSIONS[binary]}"),
    ]


def engines() -> list:
    """pytest parameters for the two stacks: {"prometheus": path, "alertmanager": path} of the pinned
    builds (Prometheus 3.x / Alertmanager 0.3x) and of Debian's (2.42 / 0.25)."""
    pair = ("prometheus", "alertmanager")
    return [
        pytest.param(
            lambda: {b: pinned(b) for b in pair},
            id=f"pinned-{tools.version('prometheus')}-{tools.version('alertmanager')}",
        ),
        pytest.param(lambda: {b: debian(b) for b in pair}, id="debian-2.42-0.25"),
    ]
