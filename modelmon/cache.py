"""Skipping a rebuild nothing can have changed.

`make rules` regenerates every output from slos/ (the promtool tests alone take
about 0.15 s per SLO). When neither the specs nor the generator changed since the
last successful build or check, and every output on disk is still what that build
wrote, the outputs are known to be current: the build is skipped. The record lives
in .modelmon/ (not committed: the folder ignores itself, as .pytest_cache does), so
a fresh clone, and CI, always build in full.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import itertools
import json
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

from modelmon import amtool, promtool, transaction, vmalert

CACHE_PATH = f"{transaction.STATE_DIR}/build-cache.json"
GENERATOR = Path(__file__).resolve().parent
TEMPLATES = GENERATOR / "templates"
# Libraries whose output lands in generated files or whose judgement lands in the errors (YAML
# dumping, templates, validation, Grafana's schema types, the rates the tests expect, the RE2 that
# judges the selectors' regexes).
LIBRARIES = ("pyyaml", "jinja2", "pydantic", "grafana-foundation-sdk", "numpy", "google-re2")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def generator_key() -> str:
    """What every output is a function of besides the specs: the generator's code and templates,
    the libraries writing them, the Python running it."""
    h = hashlib.sha256()
    sources = sorted(GENERATOR.rglob("*.py")) + sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    for path in sources:
        h.update(f"{path.relative_to(GENERATOR.parent)}\0".encode() + _digest(path.read_bytes()).encode())
    for library in LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "missing"
        h.update(f"{library}=={version}\0".encode())
    h.update(f"python {platform.python_version()}\0".encode())
    return h.hexdigest()


def inputs_key(root: Path, specs: list[Path], layout: str) -> str:
    """Everything the outputs are a function of: the specs, the layout, the generator's code and templates,
    library versions."""
    h = hashlib.sha256()
    h.update(f"layout {layout}\0generator {generator_key()}\0".encode())
    for path in specs:
        h.update(f"{path.relative_to(root)}\0".encode() + _digest(path.read_bytes()).encode())
    # The build proves the rules with these tools: another binary (a new build under the same
    # path too: `make tools` after a pin changes) must prove them again.
    tools = [os.environ.get(f"MODELMON_{name}", "") for name in ("PROMTOOL", "AMTOOL", "VMALERT")]
    tools.append(os.environ.get("PATH", ""))
    binaries = [_binary_identity(find) for find in (promtool.find_promtool, amtool.find_amtool, vmalert.find_vmalert)]
    for item in (*tools, *binaries):
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
    recorded = recorded_outputs(root, record)
    seen_at = file_system_now(root)  # before looking: what changed within 2 s of it is not trusted
    read: dict[str, list[int]] = {}  # outputs read, found as the build wrote them, by their status then
    for path, digest in record["outputs"].items():
        status = status_of(root / path)
        if still_recorded(recorded, path, status) == digest:
            continue  # as the build wrote it, by its status: unread
        try:
            if _digest((root / path).read_bytes()) != digest:
                return None
        except FileNotFoundError:
            return None
        if status is not None:
            read[path] = status
    if read and seen_at is not None:
        _record_settled(root, record, read, seen_at)
    return record["outputs"]


def _record_settled(root: Path, record: dict, read: dict[str, list[int]], seen_at: int) -> None:
    """Add to the record the status of the outputs a check read and found as the build wrote them
    (`read`: each status as looked at, before reading, no earlier than `seen_at`), those settled
    by then: the next check takes them unread. (A build records only the outputs settled when it
    ends; those it wrote itself are not, so every check after it would read them all: 126 MB at
    a thousand SLOs.) Only while no build holds the lock: one that does records its own."""
    settled = seen_at - SETTLED_NS
    fresh = {path: status for path, status in read.items() if status[2] < settled}
    if not fresh:
        return
    target = root / CACHE_PATH
    with contextlib.suppress(OSError, ValueError), transaction.locked(root, wait=False) as held:
        if not held or json.loads(target.read_text(encoding="utf-8")) != record:
            return  # a build is on, or wrote its record since
        _write_record(target, {**record, "status": {**record.get("status", {}), **fresh}})


def text_digest(text: str) -> str:
    """The digest of an output as written (UTF-8), as the record keeps it."""
    return _digest(text.encode("utf-8"))


def content_digest(content: str | KeptContent) -> str:
    """text_digest of an output's content, read only if it is not kept (KeptContent)."""
    return content.digest if isinstance(content, KeptContent) else text_digest(content)


def content_text(content: str | KeptContent) -> str:
    """An output's content, read if it is kept (KeptContent)."""
    return content.text() if isinstance(content, KeptContent) else content


# A file whose status changed this recently before a build looked at it may change again within
# the same tick of the file system's clock (a coarse one's: 2 s) and keep its status: its status
# is not recorded, and the next build reads it.
SETTLED_NS = 2_000_000_000


def file_system_now(root: Path) -> int | None:
    """The project's file system clock now, or None: the status-change time of the build lock,
    touched (the clock every file's status is stamped by, which on a network file system is the
    server's). A build holds the lock while it asks."""
    try:
        clock = root / transaction.LOCK
        os.utime(clock)
        return os.stat(clock).st_ctime_ns
    except OSError:
        return None


def status_of(path: Path | str) -> list[int] | None:
    """What changes whenever the file does: size, modification and status-change times, inode, device."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev]


def remember(
    root: Path,
    key: str,
    files: dict[str, str],
    digests: dict[str, str] | None = None,
    status: dict[str, list[int] | None] | None = None,
    seen_at: int | None = None,
) -> None:
    """Record a build whose outputs on disk equal `files` (`digests`: theirs, if known). `status`:
    the outputs' status (status_of), looked at no earlier than `seen_at` (file_system_now), of
    which those settled by then are kept for the next build to trust (only while holding the
    build lock: no other build writes meanwhile)."""
    digests = digests or {path: text_digest(text) for path, text in files.items()}
    record: dict[str, object] = {"key": key, "outputs": {path: digests[path] for path in sorted(files)}}
    if status is not None and seen_at is not None:
        settled = seen_at - SETTLED_NS
        record["status"] = {
            path: seen for path, seen in sorted(status.items()) if seen is not None and seen[2] < settled
        }
    transaction.state_dir(root)
    _write_record(root / CACHE_PATH, record)


def _write_record(target: Path, record: dict) -> None:
    """The build record as `target`, by a scratch file of this process's and one rename."""
    scratch = target.with_suffix(f".{os.getpid()}.tmp")  # each writer its own
    scratch.write_text(json.dumps(record) + "\n", encoding="utf-8")  # one line: json's C encoder
    os.replace(scratch, target)


def recorded_outputs(root: Path, record: dict | None = None) -> dict[str, tuple[str, list[int]]]:
    """The outputs the last build recorded with their status: path -> (digest, status). `record`:
    the build's record, if read already."""
    try:
        record = record or json.loads((root / CACHE_PATH).read_text(encoding="utf-8"))
        outputs, status = record["outputs"], record.get("status", {})
        return {
            path: (outputs[path], seen)
            for path, seen in status.items()
            if isinstance(outputs.get(path), str) and isinstance(seen, list) and all(isinstance(n, int) for n in seen)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none, or not one this build wrote: every output is read


def still_recorded(recorded: dict[str, tuple[str, list[int]]], path: str, status: list[int] | None) -> str | None:
    """The digest the last build recorded for the output at `path` if `status` (status_of, now) is
    still the one recorded with it (the file is then what it wrote), else None (it must be read)."""
    found = recorded.get(path)
    return found[0] if found is not None and status == found[1] else None


TEST_GROUPS_DIR = f"{transaction.STATE_DIR}/test-groups"
ACCEPTED_RULES_PATH = f"{transaction.STATE_DIR}/promtool-accepted.json"


class AcceptedRules:
    """The rule files this promtool accepted, by digest of the binary (its path, size, time and
    `--version`: a wrapper script keeps the first three whatever it runs) and the file's text.
    `promtool check rules` judges each file alone, so a build where one service changed checks
    that one. Without a root nothing is known or kept; `read` false (`build --no-cache`) every
    file is checked; `store` false (validate, `build --check`) nothing is kept."""

    def __init__(self, root: Path | None, store: bool = True, read: bool = True):
        self.path = None if root is None else root / ACCEPTED_RULES_PATH
        self.store = store
        self.known: set[str] = set()
        # None kept, or not ours: every file is checked.
        with contextlib.suppress(OSError, ValueError, TypeError):
            if self.path is not None and read:
                self.known = set(json.loads(self.path.read_text(encoding="utf-8")))

    @functools.cached_property
    def binary(self) -> str:
        try:
            version = promtool.run("--version")
            said = f"{version.returncode} {version.stdout} {version.stderr}"
        except (RuntimeError, OSError, subprocess.SubprocessError) as err:
            said = type(err).__name__
        return f"{_binary_identity(promtool.find_promtool)}\0{said}"

    def digest(self, content: str | KeptContent) -> str:
        return _digest(f"{self.binary}\0{content_digest(content)}".encode())

    def accepted(self, content: str | KeptContent) -> bool:
        return bool(self.known) and self.digest(content) in self.known

    def keep(self, contents: list[str | KeptContent]) -> None:
        """Remember these accepted files, and only the ones this build has (the set stays small)."""
        if self.path is None or not self.store:
            return
        self.known = {self.digest(content) for content in contents}
        try:
            transaction.state_dir(self.path.parent.parent)
            scratch = self.path.with_suffix(f".{os.getpid()}.tmp")
            scratch.write_text(json.dumps(sorted(self.known)), encoding="utf-8")
            os.replace(scratch, self.path)
        except OSError:
            pass  # a cache that cannot be written is no error


def stable_repr(value: object) -> str:
    """repr, with sets in sorted order: a set's own order follows string hashing, which differs
    from one process to the next. Dataclasses field by field, dicts in their (meaningful) order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(f"{f.name}={stable_repr(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return type(value).__name__ + "(" + ", ".join(stable_repr(v) for v in value) + ")"
    if isinstance(value, set | frozenset):
        return type(value).__name__ + "(" + ", ".join(sorted(stable_repr(v) for v in value)) + ")"
    return repr(value)


ENTRY_SUFFIX = ".contents"
# What earlier versions kept entries as (one JSON document each): a prune forgets them too.
OLD_ENTRY_SUFFIX = ".json"


class _Kept:
    """Values kept from one build to the next in `folder`, one file per key (`_entry_data`), each
    with the text its key digests (a digest matching another's would be a wrong output, not a
    slow one). A value is kept as its parts (`_parts`: texts, each with a name), made of them
    again by `_value`. `read` false (`build --no-cache`): none is read, all are written anew;
    `store` false (validate, `build --check`): none is written."""

    SUFFIXES = (ENTRY_SUFFIX, OLD_ENTRY_SUFFIX)  # of the files an entry is kept in (prune forgets them)

    def __init__(self, folder: Path, store: bool, read: bool):
        self.folder = folder
        self.store = store
        self.read = read
        self.used: set[str] = set()

    def _get(self, key: str, text: str) -> object | None:
        self.used.add(key)
        if not self.read:
            return None
        try:
            data = (self.folder / f"{key}{ENTRY_SUFFIX}").read_bytes()
        except OSError:
            return None  # none: made again
        end = data.find(b"\n") + 1
        found = _entry_head(data[:end], text)
        if found is None or not found[1]:
            return None
        listed = found[0]
        parts, offset = [], end
        for name, length, digest in listed:
            part = data[offset : offset + length]
            offset += length
            if _digest(part) != digest:
                return None  # damaged: made again
            parts.append((name, part.decode("utf-8")))  # (what was digested was valid UTF-8)
        return self._value(parts) if offset == len(data) else None

    def _parts(self, value: object) -> list[tuple[str | None, str]]:
        """A value as the parts it is kept as: texts, each with a name (or None)."""
        raise NotImplementedError

    def _value(self, parts: list[tuple[str | None, str]]) -> object | None:
        """The value kept as `parts`, or None if they are not of the shape `_parts` makes (made again)."""
        raise NotImplementedError

    def _put(self, key: str, text: str, value: object, texts: bool = True) -> None:
        self.used.add(key)  # (what a build keeps, its prune keeps)
        if self.store:
            _keep_file(self.folder, f"{key}{ENTRY_SUFFIX}", _entry_data(text, self._parts(value), texts))

    def prune(self) -> None:
        """Forget the entries this build did not use (after a whole build only)."""
        if self.store:
            _forget_unused(self.folder, self.SUFFIXES, self.used)


def _entry_data(text: str, parts: list[tuple[str | None, str]], texts: bool = True) -> bytes:
    """An entry as kept: one line of JSON (which escapes every line break) with the text its key
    digests and each part's name, length and digest, then the parts as they are (`texts` false:
    not them, only the line). Read without JSON decoding them: a part is the 1 MB of a rule file."""
    data = [content.encode("utf-8") for _, content in parts]
    listed = [[name, len(d), _digest(d)] for (name, _), d in zip(parts, data, strict=True)]
    head = {"plan": text, "contents": listed, **({} if texts else {"texts": False})}
    return b"".join([json.dumps(head).encode() + b"\n", *(data if texts else ())])


def _entry_head(line: bytes, text: str) -> tuple[list, bool] | None:
    """The parts an entry's first line lists (name, length, digest), and whether they follow it,
    if it is the entry of `text` and of the shape _entry_data writes; else None (not one this
    build wrote: made again)."""
    try:
        head = json.loads(line)
        texts = head.get("texts", True)
        if head["plan"] == text and _contents_shape(head["contents"]) and isinstance(texts, bool):
            return head["contents"], texts
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _contents_shape(listed: object) -> bool:
    return isinstance(listed, list) and all(
        isinstance(item, list)
        and len(item) == 3
        and (item[0] is None or isinstance(item[0], str))
        and isinstance(item[1], int)
        and item[1] >= 0
        and isinstance(item[2], str)
        for item in listed
    )


def _keep_file(folder: Path, name: str, data: bytes) -> None:
    """`data` as folder/name, by a scratch file of its own and one rename: two builds writing one
    entry, or a prune beside them, never leave half an entry. A cache that cannot be written is
    no error."""
    try:
        scratch = _scratch_file(folder, name, data)
    except FileNotFoundError:  # the first entry of its folder (a build writes thousands: made once)
        try:
            transaction.state_dir(folder.parent.parent)
            folder.mkdir(exist_ok=True)
            scratch = _scratch_file(folder, name, data)
        except OSError:
            return
    except OSError:
        return
    try:
        os.replace(scratch, folder / name)
    except OSError:
        scratch.unlink(missing_ok=True)


_scratch_names = itertools.count()


def _scratch_file(folder: Path, name: str, data: bytes) -> Path:
    """folder/name.<process>.<n>.tmp, holding `data`: a name no other running process has (its
    id), which a prune leaves while it may be written (not an entry's suffix). os.open, not
    NamedTemporaryFile: its random name and file object were a third of keeping a thousand SLOs'
    2,500 entries."""
    scratch = folder / f"{name}.{os.getpid()}.{next(_scratch_names)}.tmp"
    try:
        handle = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # (not inherited: PEP 446)
    except FileExistsError:  # a killed process's of the same id (reused, or another PID namespace's)
        handle, made = tempfile.mkstemp(dir=folder, prefix=f"{name}.", suffix=".tmp")
        scratch = Path(made)
    try:
        with open(handle, "wb") as out:
            out.write(data)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return scratch


def _forget_unused(folder: Path, suffixes: tuple[str, ...], used: set[str]) -> None:
    """Remove the entries (key + one of `suffixes`) whose key a build did not use; another build's
    scratch files are its own until an hour old (a killed build's). (One scandir: a thousand SLOs'
    entries, every build.)"""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:  # a cache that cannot be read is no error
        for entry in entries:
            key, found, rest = entry.name.partition(".")
            unused = f".{rest}" in suffixes and found and key not in used
            if unused or (entry.name.endswith(".tmp") and _abandoned(entry)):
                Path(entry.path).unlink(missing_ok=True)


# A scratch file older than this is a killed build's (one is written in milliseconds).
ABANDONED_AFTER_S = 3600


def _abandoned(entry: os.DirEntry) -> bool:
    try:
        return entry.stat().st_mtime < time.time() - ABANDONED_AFTER_S
    except OSError:
        return False


class TestGroups(_Kept):
    """Each SLO's generated promtool test groups, kept from one build to the next.

    An SLO's groups are a function of its plan alone (every number and name its scenarios
    and expectations read) and of the generator: keyed by both, a build replays only the SLOs
    whose plan changed, and a thousand SLOs of which one changed rebuild in seconds. The texts
    made from one service's plan alone (`services`) are kept beside them, alike."""

    def __init__(self, root: Path, store: bool = True, read: bool = True):
        super().__init__(root / TEST_GROUPS_DIR, store, read)
        self.missed = 0  # plans whose groups had to be generated
        self._entries: dict[int, tuple[object, str, str]] = {}  # id(plan) -> plan, key, text
        self.services = ServiceTexts(root, self)
        self.specs = KeptSpecs(root, self)

    def key(self, plan: object) -> str:
        return self._entry(plan)[0]

    def plan_text(self, plan: object) -> str:
        return self._entry(plan)[1]

    def seed(self, plan: object, text: str) -> None:
        """The plan's text, known already (kept with the plan: the same plan, the same text)."""
        # The plan is held: its id names no other plan meanwhile.
        self._entries[id(plan)] = (plan, _digest(f"{generator_key()}\0{text}".encode()), text)

    def _entry(self, plan: object) -> tuple[str, str]:
        """The plan's key and text, made once per plan (its text takes about 0.5 ms)."""
        found = self._entries.get(id(plan))
        if found is None or found[0] is not plan:
            self.seed(plan, stable_repr(plan))
            found = self._entries[id(plan)]
        return found[1], found[2]

    def _parts(self, value: object) -> list[tuple[str | None, str]]:
        return [(str(every), text) for every, text in value]  # each group's interval (seconds) and text

    def _value(self, parts: list[tuple[str | None, str]]) -> object | None:
        if all(name is not None and name.isdecimal() for name, _ in parts):  # (int() reads each)
            return [(int(every), text) for every, text in parts]
        return None

    def get(self, plan: object) -> list | None:
        if not self.read:  # (its key is not made for nothing: 0.5 ms a plan, before the tests can start)
            self.missed += 1
            return None
        found = self._get(*self._entry(plan))
        if found is None:
            self.missed += 1
        return found

    def put(self, plan: object, groups: list) -> None:
        self._put(*self._entry(plan), groups)

    def still_used(self, plan: object) -> None:
        """Keep the plan's groups past this build's prune, unread (its service's test files were kept whole)."""
        self.used.add(self.key(plan))

    def prune(self) -> None:
        """After a whole build: keep the service texts and specs it made, forget what it no longer has."""
        self.services.flush()
        self.specs.flush()
        super().prune()
        self.services.prune()
        self.specs.prune()

    @contextlib.contextmanager
    def pruned_meanwhile(self) -> Iterator[None]:
        """prune() in a forked process while the block runs (the build writes its outputs), waited
        for as it ends: at a thousand SLOs keeping 1,400 service texts is 0.6 s of CPU, which ran
        on one core with the other idle. Without fork, or where it fails, prune() first. A process
        killed on the way keeps less (each entry is whole or absent); one that raises (a bug) said
        its traceback, and the build fails once its outputs are written. As before, what is kept
        is right for its key whatever the block does: a build failing in it keeps it all the same."""
        if not self.store:  # (validate, --check: nothing to keep)
            yield
            return
        for stream in (sys.stdout, sys.stderr):  # what is buffered is written now, not by both processes
            if stream is not None:
                stream.flush()
        # Ctrl-C held back across the fork: each process is in its `try` before it can stop it.
        masked = hasattr(signal, "pthread_sigmask")
        was = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if masked else None
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of fork() beside threads: numpy's idle BLAS threads, which the
                # child, writing files, never waits on.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork() if hasattr(os, "fork") else None
        except OSError:
            pid = None
        if pid == 0:  # the child
            code = 1
            try:
                # Ctrl-C ends it as a kill would (each entry whole or absent), without a traceback.
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                if masked:
                    signal.pthread_sigmask(signal.SIG_SETMASK, was)
                gc.disable()  # (it ends within a second: collecting would copy the parent's pages)
                self.prune()
                code = 0
            except BaseException:
                traceback.print_exc()
                if sys.stderr is not None:
                    sys.stderr.flush()
            finally:
                os._exit(code)  # neither the parent's atexit handlers nor its buffers again
        failed = False
        try:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, was)
            if pid is None:  # no fork here: kept first
                self.prune()
            yield
        finally:
            if pid is not None:
                try:
                    _, status = os.waitpid(pid, 0)
                    failed = os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0
                except ChildProcessError:  # reaped already (SIGCHLD ignored): how it ended is not known
                    pass
        if failed:
            raise RuntimeError(f"keeping the build's cache in {transaction.STATE_DIR}/ failed (above)")


SERVICE_TEXTS_DIR = f"{transaction.STATE_DIR}/service-texts"


class ServiceTexts(_Kept):
    """Texts made from one service's plan alone (its rule file, its runbook pages, its test files),
    by what they are (`kind`, with whatever else they read) and the service's plan: a build after
    one SLO changed renders that service's again and takes the others' as they were. Texts made
    from one SLO's plan and what `kind` says they read besides (`made_from`) are kept alike: the
    changed service's other SLOs' runbook pages are taken as they were too."""

    def __init__(self, root: Path, groups: TestGroups):
        super().__init__(root / SERVICE_TEXTS_DIR, groups.store, groups.read)
        self.groups = groups  # which knows each SLO's key
        # Kept once the build has made every output (flush): a build that fails on the way keeps
        # none. (Each is right for its key whatever happens after.)
        self._made: dict[str, tuple[str, object, bool]] = {}  # key -> text, value, whether its texts are kept

    def _parts(self, value: object) -> list[tuple[str | None, str]]:
        return [(None, value)] if isinstance(value, str) else list(value.items())  # a text, or texts by name

    def _value(self, parts: list[tuple[str | None, str]]) -> object | None:
        if len(parts) == 1 and parts[0][0] is None:
            return parts[0][1]
        return dict(parts) if all(name is not None for name, _ in parts) else None

    def made(self, kind: str, service, make) -> object:
        """The text (or texts) of this kind of the service: kept, or `make()` and kept."""
        return self.made_from(self._of_service(kind, service), service.slos, make)

    def made_from(self, kind: str, plans, make) -> object:
        """The text (or texts) made from these SLO plans and what `kind` says (all else they read):
        kept, or `make()` and kept."""
        found = self.find_from(kind, plans)
        if found is None:
            found = make()
            self.put_from(kind, plans, found)
        return found

    def find_from(self, kind: str, plans) -> object | None:
        return self._get(*self._entry(kind, plans))

    def put_from(self, kind: str, plans, value: object) -> None:
        key, text = self._entry(kind, plans)
        self._made[key] = (text, value, True)

    def still_used(self, kind: str, plans) -> None:
        """Keep the entry of these plans past this build's prune, unread (a text kept whole was made of it)."""
        self.used.add(self._entry(kind, plans)[0])

    @staticmethod
    def _of_service(kind: str, service) -> str:
        return f"{kind}\0{stable_repr(dataclasses.replace(service, slos=()))}"

    def _entry(self, kind: str, plans) -> tuple[str, str]:
        # The plans by their keys (each the digest of the generator and the plan's text): a
        # service's plan texts are 650 KB at 100 SLOs, and this entry's text is kept and compared
        # on every read, by each kind of the service.
        text = "\0".join([kind, *map(self.groups.key, plans)])
        return _digest(f"{generator_key()}\0{text}".encode()), text

    def find_contents(self, kind: str, service, remake: Callable[[], dict[str, str]]) -> dict[str, KeptContent] | None:
        """Outputs of this kind of the service as `put_contents` kept them, by name, each unread
        (KeptContent): a kept service's test files are 100 MB at a thousand SLOs, and a build
        reads one only when the file on disk is not what the last build wrote. `remake()`: the
        contents made again, for an entry gone or damaged by the time one is read."""
        if not self.read:
            return None
        key, text = self._entry(self._of_service(kind, service), service.slos)
        self.used.add(key)
        entry = self.folder / f"{key}{ENTRY_SUFFIX}"
        try:
            with entry.open("rb") as kept:
                line = kept.readline()
        except OSError:
            return None  # none: made again
        head = _entry_head(line, text)
        if head is None or any(name is None for name, _, _ in head[0]):
            return None
        listed, texts = head
        found, offset = {}, len(line)
        made_again = functools.cache(remake)
        for name, length, digest in listed:
            found[name] = KeptContent(digest, entry, offset, length, lambda name=name: made_again()[name], texts)
            offset += length
        return found

    def contents(
        self, kind: str, service, make: Callable[[], dict[str, str]], texts: bool = True
    ) -> dict[str, str | KeptContent]:
        """Outputs of this kind of the service (name -> content): kept, unread (find_contents), or
        `make()` and kept (put_contents)."""
        found = self.find_contents(kind, service, make)
        if found is None:
            found = make()
            self.put_contents(kind, service, found, texts)
        return found

    def put_contents(self, kind: str, service, contents: dict[str, str], texts: bool = True) -> None:
        """Keep outputs of this kind of the service (name -> content), for find_contents. `texts`
        false: their digests alone, for outputs `remake` makes again cheaply from other kept
        entries (test files from their SLOs' groups, pages from each SLO's): a build writes 117 MB
        less at a thousand SLOs, and reads one only where the file on disk is not as it wrote it."""
        key, text = self._entry(self._of_service(kind, service), service.slos)
        self._made[key] = (text, contents, texts)

    def flush(self) -> None:
        for key, (text, value, texts) in self._made.items():
            self._put(key, text, value, texts)
        self._made.clear()


@dataclasses.dataclass(frozen=True)
class KeptContent:
    """An output's content an earlier build kept, unread: its digest is known (write_all needs
    no more of a file still as the last build wrote it); `text()` reads it when asked, or makes
    it again where the entry holds its digest alone."""

    digest: str  # text_digest of the content
    entry: Path  # the file it is kept in, from `offset`, `length` bytes
    offset: int
    length: int
    remake: Callable[[], str]  # the content made again, should the entry be gone or damaged by then
    stored: bool = True  # whether the entry holds the content (else its digest alone)

    def text(self) -> str:
        try:
            if self.stored:
                with self.entry.open("rb") as kept:
                    kept.seek(self.offset)
                    data = kept.read(self.length)
                if _digest(data) == self.digest:
                    return data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            pass  # another build's prune, or a damaged entry: made again
        made = self.remake()
        if text_digest(made) != self.digest:
            raise RuntimeError(f"a kept output of {self.entry.name} differs from the one made again: a generator bug")
        return made


SPECS_DIR = f"{transaction.STATE_DIR}/specs"


class KeptSpecs:
    """Each spec file as loaded, and each of its documents as checked and planned alone
    (checks.own_checks), kept from one build to the next: a build after one SLO changed loads,
    checks and plans that file and takes the others' as they were; the checks across files run
    every time, on all of them.

    A file's entry is keyed by its bytes, where it is and the generator; its documents' checks
    besides by what they read outside the file (modelmon.toml's compatibility, the files that
    hold the project's AlertWindows). The entry holds the bytes its key digests, as _Kept's do.
    Entries are pickles (pydantic specs, plan dataclasses) read by _OwnTypes, which makes
    modelmon's own data types only: a file in .modelmon/ that is not such a pickle, or not of the
    entry's shape, is made again; none runs code. Like the kept test groups and texts, an entry
    of the right shape is taken as what a build wrote (.modelmon/ is the build's own state, never
    committed); write_all still writes nothing outside the project, whatever a plan names."""

    def __init__(self, root: Path, groups: TestGroups):
        self.folder = root / SPECS_DIR
        self.groups = groups  # whose plan texts are kept with the plans
        self.store, self.read = groups.store, groups.read
        self._files: dict[tuple[str, str], tuple[str, dict]] = {}  # (path, display) -> key, entry
        self._dirty: set[str] = set()
        self._context = ""
        self.loads = 0  # files loaded anew
        self.checked = 0  # documents checked anew

    def loaded(self, path: Path, display: str) -> tuple[list, list]:
        """load_file's documents and errors of the file: kept, or loaded and kept."""
        from modelmon.loader import load_file, read_spec

        try:
            raw = read_spec(path)
        except OSError:
            return load_file(path, display)  # which says why it cannot be read
        source = [str(path), display, raw]
        key = _digest(f"{generator_key()}\0{path}\0{display}\0".encode() + raw)
        entry = self._read(key)
        if entry is None or entry.get("source") != source:
            entry = {"source": source, "loaded": load_file(path, display, raw), "checked": {}}
            self._dirty.add(key)
            self.loads += 1
        self._files[str(path), display] = (key, entry)
        return entry["loaded"]

    def checks(self, compatibility: str | None, windows: list) -> object:
        """checks.own_checks, kept: for check_all, once every file is loaded (`windows`: the
        AlertWindows documents they hold)."""
        from modelmon.checks import own_checks

        holders = {w.display for w in windows}
        files = sorted({key for (_, display), (key, _) in self._files.items() if display in holders})
        self._context = _digest(f"{compatibility}\0{' '.join(files)}".encode())

        def own(item):
            found = self._files.get((str(item.path), item.display))
            if found is None:  # not loaded here
                return own_checks(item)
            key, entry = found
            slot = (self._context, item.document)
            kept = entry["checked"].get(slot)
            if kept is None:
                kept = (own_checks(item), None)
                entry["checked"][slot] = kept
                self._dirty.add(key)
                self.checked += 1
            elif kept[1] is not None:
                for plan, text in zip(kept[0].planned[2].slos, kept[1], strict=True):
                    self.groups.seed(plan, text)
            return kept[0]

        return own

    def flush(self) -> None:
        """Keep what this build loaded and checked anew, with its plans' texts (made by the build
        already). Once the build has made every output, as the other kept values: a build that
        fails to make them keeps nothing, here neither."""
        if not self.store:
            return
        for key, entry in (found for found in self._files.values() if found[0] in self._dirty):
            checked = {}
            for slot, (own, _) in entry["checked"].items():
                if slot[0] == self._context:  # another context's checks: no build reads them again
                    plans = own.planned[2].slos if own.planned is not None else None
                    checked[slot] = (own, None if plans is None else [self.groups.plan_text(p) for p in plans])
            entry["checked"] = checked
            try:
                data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
                continue  # not kept: loaded again next time
            _keep_file(self.folder, f"{key}.pickle", data)
        self._dirty.clear()

    def prune(self) -> None:
        """Forget the files this build did not read (after a whole build only)."""
        if self.store:
            _forget_unused(self.folder, (".pickle",), {key for key, _ in self._files.values()})

    def _read(self, key: str) -> dict | None:
        if not self.read:
            return None
        try:
            with (self.folder / f"{key}.pickle").open("rb") as stream:
                entry = _OwnTypes(stream).load()
        except Exception:  # none, or not what a build wrote (of any shape): made again
            return None
        return entry if _entry_shape(entry) else None


def _entry_shape(entry: object) -> bool:
    """Whether an unpickled entry has the shape KeptSpecs writes, to the plans and texts its
    use reads (else it is made again, not crashed on)."""
    from modelmon.checks import OwnChecks
    from modelmon.loader import LoadedSpec, LoadedWindows, SpecError
    from modelmon.plan import ServicePlan

    if not isinstance(entry, dict) or not isinstance(entry.get("checked"), dict):
        return False
    loaded = entry.get("loaded")
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and all(isinstance(part, list) for part in loaded)):
        return False
    if not all(isinstance(d, LoadedSpec | LoadedWindows) for d in loaded[0]) or not all(
        isinstance(e, SpecError) for e in loaded[1]
    ):
        return False
    for slot, kept in entry["checked"].items():
        if not (isinstance(slot, tuple) and isinstance(kept, tuple) and len(kept) == 2):
            return False
        own, texts = kept
        if not isinstance(own, OwnChecks):
            return False
        planned = own.planned
        if planned is not None and not (
            isinstance(planned, tuple) and len(planned) == 3 and isinstance(planned[2], ServicePlan)
        ):
            return False
        if texts is not None and not (
            planned is not None
            and isinstance(texts, list)
            and len(texts) == len(planned[2].slos)
            and all(isinstance(t, str) for t in texts)
        ):
            return False
    return True


class _OwnTypes(pickle.Unpickler):
    """An unpickler that makes modelmon's data types (dataclasses, pydantic models) and the few
    library values they hold, and nothing else: no function of the standard library runs."""

    LIBRARY = frozenset(
        {
            ("decimal", "Decimal"),
            *((module, name) for module in ("pathlib", "pathlib._local") for name in ("PosixPath", "WindowsPath")),
            ("pydantic.alias_generators", "to_camel"),  # how a Sloth document's fields are spelt
        }
    )  # (Python 3.13 pickles paths as pathlib._local's)
    OWN_FUNCTIONS = frozenset({("modelmon.loader", "_as_written")})

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self.LIBRARY or (module, name) in self.OWN_FUNCTIONS:
            return super().find_class(module, name)
        if module.split(".")[0] == "modelmon" and "." not in name:  # a dotted name reaches into what a module imports
            found = super().find_class(module, name)
            if isinstance(found, type) and (dataclasses.is_dataclass(found) or hasattr(found, "model_fields")):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not one of modelmon's data types")
