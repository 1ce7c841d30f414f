"""Build the pinned tools of tools/versions.toml into .tools/bin/, or reuse them.

    python3 tools/build.py            every tool
    python3 tools/build.py --for test the tools `make test` needs (what `make tools` runs)
    python3 tools/build.py promtool   the tools holding these binaries
    python3 tools/build.py --list     each binary, where it comes from, and whether it is there

Each tool is built from its own Go module at the pinned version (`go mod download`,
then `go build` inside the module, so its own go.mod, go.sum and replace directives
apply, which `go install` refuses for Prometheus). A binary is rebuilt only when its
stamp (module@version) differs from the pin. A binary given by its environment
variable (MODELMON_BIN_PROMTOOL=/opt/prometheus-3.13.2/promtool, ...) is used as it
is and never built, so a machine without Go can run everything from release binaries.

Runs on the system's Python 3.11 (tomllib), before any virtual environment exists.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "tools" / "versions.toml"
# MODELMON_TOOLS moves the folder (a cache shared by several checkouts, or a test's own).
BIN = Path(os.environ.get("MODELMON_TOOLS") or ROOT / ".tools" / "bin")
# The oldest Go that the pinned modules' go.mod files accept (Sloth 0.16 asks for 1.26.0,
# mimirtool 1.25.9, Prometheus and Alertmanager 1.25.0); each build also checks its own.
GO_MINIMUM = (1, 26)
# Where each tool keeps its version string, so `tool --version` reports the pin.
VERSION_VARIABLE = {
    "prometheus": "github.com/prometheus/common/version.Version",
    "alertmanager": "github.com/prometheus/common/version.Version",
    "thanos": "github.com/prometheus/common/version.Version",
    "sloth": "github.com/slok/sloth/internal/info.Version",
}


# Web UIs these modules embed but do not ship: each is built with npm from the tool's own
# repository, which the module proxy does not serve. The binary then serves a one-line page
# there; its API, which is all the tests and the stack use, is unaffected.
UNSHIPPED_ASSETS = {"alertmanager": ["ui/app/dist/index.html"]}
PLACEHOLDER_PAGE = "<!doctype html><title>UI not built</title>Built from the Go module without its web UI.\n"


@functools.cache
def pins() -> dict[str, dict]:
    with PINS.open("rb") as f:
        return tomllib.load(f)


def binaries() -> dict[str, str]:
    """Every binary the pins build, with the tool (table of versions.toml) that builds it."""
    return {Path(c).name: tool for tool, pin in pins().items() for c in pin.get("commands", [])}


def env_variable(binary: str) -> str:
    return f"MODELMON_BIN_{binary.upper()}"


def path(binary: str) -> Path:
    """Where the binary is: its environment variable, else .tools/bin/. It may not exist."""
    configured = os.environ.get(env_variable(binary))
    return Path(configured) if configured else BIN / binary


def installed(binary: str) -> str | None:
    """The pinned binary if it is there (given by its variable, or built and stamped), else None."""
    every = binaries()
    return str(path(binary)) if binary in every and _present(binary, every[binary]) else None


def version(binary: str) -> str:
    """The version the pins give the tool holding `binary`."""
    return pins()[binaries()[binary]]["version"]


def stamp(tool: str) -> str:
    """What a build of `tool` is made of: a binary whose stamp differs (another pin, other tags or
    flags) is rebuilt."""
    pin = pins()[tool]
    return (
        f"{pin['module']}@{pin['module_version']}\ntags: {','.join(pin.get('tags', []))}\nldflags: {_ldflags(tool)}\n"
    )


def _ldflags(tool: str) -> str:
    # Stripped (-s -w: no symbol table or DWARF, a faster link), and the version --version reports.
    ldflags = "-s -w"
    if tool in VERSION_VARIABLE:
        ldflags += f" -X {VERSION_VARIABLE[tool]}={pins()[tool]['version']}"
    return ldflags


def _present(binary: str, tool: str) -> bool:
    if os.environ.get(env_variable(binary)):
        return os.access(path(binary), os.X_OK)
    stamp_file = BIN / f"{binary}.stamp"
    return os.access(BIN / binary, os.X_OK) and stamp_file.is_file() and stamp_file.read_text() == stamp(tool)


def _version_of(go: str) -> tuple[int, ...]:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    return tuple(int(part) for part in re.findall(r"\d+", out.removeprefix("go"))[:3])


def _go_directive(go_mod: Path) -> tuple[int, ...]:
    """The Go version a module's go.mod requires (its `go` line)."""
    found = re.search(r"^go (\d+(?:\.\d+){0,2})\s*$", go_mod.read_text(), re.M)
    return tuple(int(part) for part in found.group(1).split(".")) if found else (0,)


def _go() -> str | None:
    go = shutil.which("go")
    if not go:
        return None
    return go if _version_of(go) >= GO_MINIMUM else None


def _download(go: str, tool: str) -> dict:
    """`go mod download -json` of the tool's pinned module: where its source and go.mod are."""
    pin = pins()[tool]
    module = f"{pin['module']}@{pin['module_version']}"
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    download = subprocess.run(
        [go, "mod", "download", "-json", module], capture_output=True, text=True, env=env, check=False
    )
    if download.returncode:
        sys.exit(f"tools: go mod download {module} failed:\n{download.stdout}{download.stderr}")
    return json.loads(download.stdout)


def source(tool: str) -> Path:
    """The pinned module's source (read-only, in Go's module cache): the tests read Sloth's own
    examples from it, at the version they compare with."""
    go = _go()
    if go is None:
        sys.exit(
            f"tools: the source of {tool} comes from the Go module proxy: install Go "
            f"{'.'.join(map(str, GO_MINIMUM))} or newer"
        )
    return Path(_download(go, tool)["Dir"])


def _build(go: str, tool: str, wanted: list[str]) -> None:
    pin = pins()[tool]
    module = f"{pin['module']}@{pin['module_version']}"
    started = time.monotonic()
    print(f"tools: building {', '.join(wanted)} from {module} (minutes on a cold Go cache)", flush=True)
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    downloaded = _download(go, tool)
    source = Path(downloaded["Dir"])
    needs = _go_directive(Path(downloaded["GoMod"]))
    if needs > _version_of(go):
        sys.exit(
            f"tools: {module} needs Go {'.'.join(map(str, needs))} or newer, this Go is "
            f"{'.'.join(map(str, _version_of(go)))}: install a newer Go, or point "
            + ", ".join(env_variable(b) for b in wanted)
            + " at release binaries"
        )
    ldflags = _ldflags(tool)
    scratch = BIN / f".build-{tool}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if tool in UNSHIPPED_ASSETS:
        # The module cache is read-only: build a copy that holds the placeholders.
        copy = scratch / "source"
        shutil.copytree(source, copy)
        for asset in UNSHIPPED_ASSETS[tool]:
            (copy / asset).parent.mkdir(parents=True, exist_ok=True)
            (copy / asset).write_text(PLACEHOLDER_PAGE)
        source = copy
    commands = [f"./{c}" for c in pin["commands"] if Path(c).name in wanted]
    tags = ["-tags", ",".join(pin["tags"])] if pin.get("tags") else []
    build = subprocess.run(
        [go, "build", "-trimpath", *tags, "-ldflags", ldflags, "-o", str(scratch), *commands], cwd=source, env=env
    )
    if build.returncode:
        sys.exit(f"tools: building {module} failed (go build exit {build.returncode})")
    for binary in wanted:
        # Move into place, then stamp: a killed build leaves no stamp, so it is rebuilt.
        os.replace(scratch / binary, BIN / binary)
        (BIN / f"{binary}.stamp").write_text(stamp(tool))
    shutil.rmtree(scratch)
    print(f"tools: built {', '.join(wanted)} in {time.monotonic() - started:.0f} s", flush=True)


def ensure(names: list[str]) -> None:
    every = binaries()
    unknown = [n for n in names if n not in every and n not in pins()]
    if unknown:
        sys.exit(f"tools: unknown {', '.join(unknown)}; the pinned binaries are {', '.join(every)}")
    wanted = [b for b, tool in every.items() if not names or b in names or tool in names]
    missing = [b for b in wanted if not _present(b, every[b])]
    given = [b for b in missing if os.environ.get(env_variable(b))]
    if given:
        sys.exit("tools: " + "; ".join(f"{env_variable(b)}={path(b)} is not an executable file" for b in given))
    _link_given([b for b in wanted if os.environ.get(env_variable(b))])
    if not missing:
        return
    go = _go()
    if go is None:
        sys.exit(
            f"tools: missing {', '.join(missing)}, and building them needs Go {'.'.join(map(str, GO_MINIMUM))}"
            " or newer on PATH (with the Go module proxy reachable). Install Go, or download the release"
            " binaries of the versions in tools/versions.toml and point "
            + ", ".join(f"{env_variable(b)}" for b in missing)
            + " at them."
        )
    BIN.mkdir(parents=True, exist_ok=True)
    for tool in dict.fromkeys(every[b] for b in missing):
        _build(go, tool, [b for b in missing if every[b] == tool])


def _link_given(given: list[str]) -> None:
    """A binary given by its variable goes into the tools folder as a link, so that everything
    finding tools on PATH (promtool and amtool for modelmon, the stack, the tests) runs it."""
    if not given:
        return
    BIN.mkdir(parents=True, exist_ok=True)
    for binary in given:
        link = BIN / binary
        link.unlink(missing_ok=True)
        (BIN / f"{binary}.stamp").unlink(missing_ok=True)  # not our build: rebuilt once the variable goes
        link.symlink_to(path(binary).resolve())


def needed_for(purpose: str) -> list[str]:
    """The tools (tables of versions.toml) that `purpose` ("test", "bench") builds."""
    return [tool for tool, pin in pins().items() if purpose in pin.get("for", []) and pin.get("commands")]


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--for":
        tools = needed_for(argv[1])
        if not tools:
            sys.exit(f"tools: nothing in tools/versions.toml is for {argv[1]!r}")
        ensure(tools)
        return
    if argv == ["--list"]:
        for binary, tool in binaries().items():
            pin = pins()[tool]
            state = "present" if _present(binary, tool) else "missing"
            print(f"{binary:13} {pin['version']:22} {state:8} {path(binary)}")
        return
    ensure(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
