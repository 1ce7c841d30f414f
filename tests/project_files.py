"""Writing and listing the files of a throwaway project, for tests of what a build or validate writes."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def files_in(root: Path) -> set[str]:
    """Every file but the build cache and the layout file itself."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".modelmon" and p.name != "modelmon.toml"
    }
