"""Shared fixtures: throwaway projects with their own slos/ folder."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tools import build as tools

REPO = Path(__file__).resolve().parent.parent
# As under `make test`: the pinned tools first (promtool, amtool, Prometheus, Alertmanager of
# tools/versions.toml), so a bare `pytest` runs on the same binaries.
os.environ["PATH"] = f"{tools.BIN}{os.pathsep}{os.environ.get('PATH', '')}"
# What `make rules` writes, copied into throwaway projects so `build --check` starts clean.
OUTPUTS = ("rules", "prometheus", "schema", "docs", "grafana/dashboards", "runbooks", "alertmanager", "kubernetes")
# The repository's layout (every output, headers naming `make rules`), which throwaway projects share.
CONFIG = "modelmon.toml"


@pytest.fixture
def project(tmp_path: Path):
    """A factory: project({"x.yaml": "..."}) -> a folder with slos/ holding those files.

    The project has the repository's modelmon.toml unless `config=False` (then: the default layout)."""

    def make(specs: dict[str, str], copy_outputs: bool = False, config: bool = True) -> Path:
        (tmp_path / "slos").mkdir(exist_ok=True)
        if config:
            shutil.copy(REPO / CONFIG, tmp_path / CONFIG)
        for name, text in specs.items():
            (tmp_path / "slos" / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        if copy_outputs:
            for folder in OUTPUTS:
                shutil.copytree(REPO / folder, tmp_path / folder, symlinks=True, dirs_exist_ok=True)
        return tmp_path

    return make


@pytest.fixture
def models_project(tmp_path: Path) -> Path:
    """A copy of the repository's own specs and committed outputs."""
    # symlinks=True: docs/runbooks stays a link to the copy's own runbooks/, as in the repository.
    for folder in ("slos", *OUTPUTS):
        shutil.copytree(REPO / folder, tmp_path / folder, symlinks=True)
    shutil.copy(REPO / CONFIG, tmp_path / CONFIG)
    return tmp_path


@pytest.fixture
def timings():
    """Seconds an end-to-end test measures, printed at the end (pytest -s shows them)."""
    found: dict[str, float] = {}
    yield found
    print("\n" + ", ".join(f"{k}: {v:.0f}s" for k, v in found.items()))
