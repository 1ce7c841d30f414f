"""Skipping a rebuild nothing can have changed.

`make rules` regenerates every output from slos/ (the promtool tests alone take
about 0.15 s per SLO). When neither the specs nor the generator changed since the
last successful build or check, and every output on disk is still what that build
wrote, the outputs are known to be current: the build is skipped. The record lives
in .modelmon/ (not committed: the folder ignores itself, as .pytest_cache does), so
a fresh clone, and CI, always build in full.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from modelmon import amtool, promtool, transaction

CACHE_PATH = f"{transaction.STATE_DIR}/build-cache.json"
GENERATOR = Path(__file__).resolve().parent
TEMPLATES = GENERATOR / "templates"
# Libraries whose output lands in generated files (YAML dumping, templates, Grafana's schema types).
LIBRARIES = ("pyyaml", "jinja2", "pydantic", "grafana-foundation-sdk")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inputs_key(root: Path, specs: list[Path], layout: str) -> str:
    """Everything the outputs are a function of: the specs, the layout, the generator's code and templates,
    library versions."""
    h = hashlib.sha256()
    h.update(f"layout {layout}\0".encode())
    sources = sorted(GENERATOR.rglob("*.py")) + sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    for path in sources:
        h.update(f"{path.relative_to(GENERATOR.parent)}\0".encode() + _digest(path.read_bytes()).encode())
    for path in specs:
        h.update(f"{path.relative_to(root)}\0".encode() + _digest(path.read_bytes()).encode())
    for library in LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "missing"
        h.update(f"{library}=={version}\0".encode())
    # The build proves the rules with these tools: another binary (a new build under the same
    # path too: `make tools` after a pin changes) must prove them again.
    tools = (os.environ.get("MODELMON_PROMTOOL", ""), os.environ.get("MODELMON_AMTOOL", ""), os.environ.get("PATH", ""))
    binaries = [_binary_identity(find) for find in (promtool.find_promtool, amtool.find_amtool)]
    for item in (f"python {platform.python_version()}", *tools, *binaries):
        h.update(f"{item}\0".encode())
    return h.hexdigest()


def _binary_identity(find) -> str:
    """The binary a tool finder (promtool's, amtool's) resolves to, with its size and modification time."""
    try:
        found = Path(find()).resolve()
        stat = found.stat()
    except (RuntimeError, OSError) as err:  # missing: the build itself says so
        return f"{find.__module__} {type(err).__name__}"
    return f"{found} {stat.st_size} {stat.st_mtime_ns}"


def outputs_current(root: Path, key: str) -> dict[str, str] | None:
    """The last build's outputs (path -> digest), when it had this key and every output is as it wrote them."""
    try:
        record = json.loads((root / CACHE_PATH).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if record.get("key") != key:
        return None
    for path, digest in record["outputs"].items():
        try:
            if _digest((root / path).read_bytes()) != digest:
                return None
        except FileNotFoundError:
            return None
    return record["outputs"]


def remember(root: Path, key: str, files: dict[str, str]) -> None:
    """Record a build whose outputs on disk equal `files`."""
    record = {"key": key, "outputs": {path: _digest(text.encode("utf-8")) for path, text in sorted(files.items())}}
    target = root / CACHE_PATH
    transaction.state_dir(root)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(scratch, target)
