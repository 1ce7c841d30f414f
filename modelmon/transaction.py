"""The outputs of a build change together, or the next command finishes the change.

A build writes every new output into a scratch folder inside the project (so each move is
a rename on one file system), proves them, then commits:

1. the journal, listing every move and removal, appears at once (written in the scratch folder,
   flushed, renamed into .modelmon/);
2. each file is moved into place, then each orphan removed;
3. the journal is deleted, then the scratch folder.

Killed before (1), nothing changed and the scratch folder is left: the next build removes it.
Killed after (1), every new file is still in the scratch folder or already in place: the next
command rolls the journal forward (moving what is left, removing what is listed), says so, and
goes on. One build at a time: the lock is held from the first scratch write to the last move.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class InterruptedBuild(RuntimeError):
    """An interrupted build that cannot be finished (its moves fail): said, never a traceback."""


STATE_DIR = ".modelmon"
JOURNAL = f"{STATE_DIR}/build-journal.json"
LOCK = f"{STATE_DIR}/build.lock"
SCRATCH_PREFIX = ".modelmon-build-"


def state_dir(root: Path) -> Path:
    """.modelmon/ of the project, which ignores itself (nothing in it is committed)."""
    folder = root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# The build state of modelmon (cache, journal, lock): nothing here is committed.\n*\n")
    return folder


@contextlib.contextmanager
def locked(root: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the project's build lock: a second build waits for the first (`wait` false: yields
    False at once instead, holding nothing, while another holds it)."""
    state_dir(root)
    with open(root / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def scratch_folder(root: Path) -> Iterator[Path]:
    """A new scratch folder in the project, removed when the block ends, unless a journal names
    it then: an exception (Ctrl-C, a full disk) during the moves leaves it for `recover`."""
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=root))
    try:
        yield folder
    finally:
        if not _journal_names(root, folder):
            shutil.rmtree(folder, ignore_errors=True)


def _journal_names(root: Path, folder: Path) -> bool:
    try:
        return json.loads((root / JOURNAL).read_text())["scratch"] == folder.name
    except (FileNotFoundError, ValueError, KeyError):
        return False


def commit(root: Path, scratch: Path, moves: list[str], removals: list[str]) -> None:
    """Move `moves` (paths relative to both folders) from scratch into root and remove `removals`,
    as one change: a kill at any point is finished by `recover`. Call with the lock held."""
    journal = scratch / "journal.json"
    journal.write_text(json.dumps({"scratch": scratch.name, "moves": moves, "removals": removals}))
    _flush(journal)
    os.replace(journal, root / JOURNAL)
    _flush_folder(root / STATE_DIR)
    _roll_forward(root, scratch, moves, removals)
    (root / JOURNAL).unlink()


def recover(root: Path) -> list[str]:
    """Finish a build that was killed while committing, and remove scratch folders of killed builds.
    Returns what it did, in words (nothing when there was nothing to do)."""
    if not (root / JOURNAL).exists() and not _scratch_folders(root):
        return []
    with locked(root):
        return finish(root)


def finish(root: Path, keep: Path | None = None) -> list[str]:
    """`recover`, for a caller that holds the lock already (no build runs, so every scratch folder
    but `keep`, the caller's own, is a killed build's)."""
    said = []
    if (root / JOURNAL).exists():
        record = json.loads((root / JOURNAL).read_text())
        scratch = root / record["scratch"]
        left = [path for path in record["moves"] if (scratch / path).exists()]
        try:
            _roll_forward(root, scratch, left, record["removals"])
        except OSError as err:
            raise InterruptedBuild(
                f"a build was interrupted while replacing its outputs, and finishing it failed: {err}; "
                f"fix that, then run the command again (the new files wait in {scratch.name}/)"
            ) from None
        (root / JOURNAL).unlink()
        said.append(
            "modelmon: finished a build that was interrupted while replacing its outputs "
            f"({len(left)} of {len(record['moves'])} files were still to move into place)"
        )
    for folder in _scratch_folders(root):
        if folder == keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        said.append(f"modelmon: removed {folder.name}/, the scratch folder of an interrupted build")
    return said


def _roll_forward(root: Path, scratch: Path, moves: list[str], removals: list[str]) -> None:
    for path in moves:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch / path, root / path)
    for path in removals:
        (root / path).unlink(missing_ok=True)


def _scratch_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(f"{SCRATCH_PREFIX}*") if p.is_dir())


def _flush(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _flush_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
