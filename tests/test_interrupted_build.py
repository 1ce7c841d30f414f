"""A build's outputs change together: killed at any step of replacing them, the next command
finishes the change (modelmon.transaction), and scratch folders of killed builds are removed.

Each case runs `modelmon build` in its own process, which SIGKILLs itself right after the Nth
step of the commit (the journal appearing, each move, each removal, the journal going), then
checks what the next command finds.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelmon import build, transaction

BEFORE = """version: modelmon/v1
service: svc
slos:
  - name: availability
    objective: 99
    sli: {availability: {}}
  - name: latency
    objective: 95
    sli: {latency: {threshold_ms: 5000}}
"""
# One SLO changes (its rules, tests and pages), the other goes (its pages are removed).
AFTER = """version: modelmon/v1
service: svc
slos:
  - name: availability
    objective: 99.5
    sli: {availability: {}}
"""

# Runs the CLI with os.replace and Path.unlink counted; SIGKILL right after step argv[1]. Steps
# before the commit (writing the scratch folder, promtool) use neither.
KILLED_AFTER = """
import os, pathlib, signal, sys
from modelmon import cli, transaction

step, limit, armed = 0, int(sys.argv[1]), False
replace, unlink, commit = os.replace, pathlib.Path.unlink, transaction.commit

def counted(action):
    def run(*args, **kwargs):
        global step
        action(*args, **kwargs)
        if not armed:  # the build's own state (its cache of test groups) is written before the commit
            return
        step += 1
        if step == limit:
            os.kill(os.getpid(), signal.SIGKILL)
    return run

def counting(*args, **kwargs):
    global armed
    armed = True
    return commit(*args, **kwargs)

transaction.os.replace = counted(replace)
pathlib.Path.unlink = counted(unlink)
transaction.commit = counting
sys.exit(cli.main(["build", "--no-cache"]))
"""

# Ctrl-C (KeyboardInterrupt, which runs every cleanup) right after step argv[1] of the commit.
INTERRUPTED_AFTER = KILLED_AFTER.replace("os.kill(os.getpid(), signal.SIGKILL)", "raise KeyboardInterrupt")

# Killed with every new file written in the scratch folder (and proven), before the commit begins.
KILLED_BEFORE_COMMIT = """
import os, signal, sys
from modelmon import build, cli

def killed_before_the_commit(root, scratch, written, removed):
    assert all((scratch / path).is_file() for path in written)
    os.kill(os.getpid(), signal.SIGKILL)

build.transaction.commit = killed_before_the_commit
sys.exit(cli.main(["build", "--no-cache"]))
"""


def modelmon(root: Path, *args: str, script: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "modelmon.cli", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A project built from BEFORE, with AFTER in its spec; and both sets of outputs."""
    root = tmp_path_factory.mktemp("project")
    (root / "slos").mkdir()
    (root / "slos" / "svc.yaml").write_text(BEFORE)
    old = build.compile_all(root).files
    build.write_all(root, build.compile_all(root))
    (root / "slos" / "svc.yaml").write_text(AFTER)
    new = build.compile_all(root).files
    return root, old, new


def outputs(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(("slos/", ".modelmon"))
    }


def commit_steps(old: dict[str, str], new: dict[str, str]) -> int:
    moves = sum(1 for path, text in new.items() if old.get(path) != text)
    removals = len(set(old) - set(new))
    assert moves >= 3 and removals >= 2  # the case covers moves and removals
    return 1 + moves + removals + 1  # the journal appears, each move, each removal, the journal goes


def test_a_build_killed_at_any_step_of_its_commit_is_finished_by_the_next_command(built, tmp_path):
    root, old, new = built
    steps = commit_steps(old, new)
    for step in range(1, steps + 1):
        project = tmp_path / f"killed-after-{step}"
        shutil.copytree(root, project)
        killed = modelmon(project, str(step), script=KILLED_AFTER)
        assert killed.returncode == -signal.SIGKILL, (step, killed.stdout, killed.stderr)
        # After the journal alone, nothing has moved; after the last removal, everything has.
        expected_now = old if step == 1 else new if step >= steps - 1 else None
        assert (outputs(project) == expected_now) if expected_now else outputs(project) not in (old, new), step
        # The next command (here build --check) finishes the change before it reads the outputs.
        checked = modelmon(project, "build", "--check")
        assert checked.returncode == 0, (step, checked.stdout, checked.stderr)
        if step < steps:
            assert "finished a build that was interrupted while replacing its outputs" in checked.stderr, step
        assert outputs(project) == new, step
        assert not list(project.glob(f"{transaction.SCRATCH_PREFIX}*")), step
        assert not (project / transaction.JOURNAL).exists(), step


def test_a_build_killed_before_its_commit_leaves_every_output_as_it_was(built, tmp_path):
    root, old, _ = built
    project = tmp_path / "killed-before"
    shutil.copytree(root, project)
    killed = modelmon(project, script=KILLED_BEFORE_COMMIT)
    assert killed.returncode == -signal.SIGKILL
    [scratch] = list(project.glob(f"{transaction.SCRATCH_PREFIX}*"))
    assert outputs(project) == {**old, **{p: t for p, t in outputs(project).items() if p.startswith(scratch.name)}}
    checked = modelmon(project, "build", "--check")
    assert checked.returncode == 1  # stale: the spec changed and nothing was replaced
    assert f"removed {scratch.name}/, the scratch folder of an interrupted build" in checked.stderr
    assert outputs(project) == old
    rebuilt = modelmon(project, "build")
    assert rebuilt.returncode == 0, rebuilt.stderr


def test_a_build_interrupted_by_ctrl_c_mid_commit_keeps_its_scratch_folder_for_the_next_command(built, tmp_path):
    """An exception unwinds the build (its scratch folder's cleanup included): the journal must keep
    the new files there, or the next command could not finish the change."""
    root, old, new = built
    project = tmp_path / "interrupted"
    shutil.copytree(root, project)
    interrupted = modelmon(project, "4", script=INTERRUPTED_AFTER)  # the journal and 3 moves
    assert interrupted.returncode != 0 and "KeyboardInterrupt" in interrupted.stderr
    assert outputs(project) not in (old, new)
    assert len(list(project.glob(f"{transaction.SCRATCH_PREFIX}*"))) == 1
    checked = modelmon(project, "build", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "finished a build that was interrupted while replacing its outputs" in checked.stderr
    assert outputs(project) == new
    assert not list(project.glob(f"{transaction.SCRATCH_PREFIX}*"))
