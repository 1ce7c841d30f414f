"""The compile pipeline: slos/*.yaml -> every generated file, written all or nothing.

`build` writes into a scratch folder first, proves the rules with
`promtool check rules` and the Alertmanager config with `amtool check-config`, and
only then moves each file into place; a spec error, or a rule or config they
refuse, leaves every committed output as it was.
`build --check` compares instead of writing and names each stale file.
Where each output goes, and which are written, is the project's layout
(modelmon/layout.py: `modelmon.toml`, or the defaults). `validate` runs this same
compile in memory and writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from types import ModuleType

from modelmon import amtool, cache, promtool, transaction, vmalert
from modelmon import layout as layouts
from modelmon.cache import TestGroups
from modelmon.checks import check_all, own_checks
from modelmon.conventions import SLOTH_INFO_RECORD
from modelmon.formats import sloth
from modelmon.layout import Layout
from modelmon.loader import FieldPath, LoadedSpec, LoadedWindows, SpecError, SpecErrors, load_file
from modelmon.outputs import alertmanager, dashboard, kubernetes, promtool_tests, reference, rules, runbooks
from modelmon.outputs.promtool_tests import TestGenerationError, TestGenerationErrors
from modelmon.outputs.rules import RuleFile, rule_file
from modelmon.plan import ProjectPlan, SloPlan

# The default layout's places (a project's modelmon.toml may move them; this repository's keeps them).
SLO_DIR = Layout.slos
RULES_DIR = Layout.rules
TESTS_DIR = Layout.promtool_tests
DASHBOARDS_DIR = Layout.dashboards
ALERTMANAGER_PATH = Layout.alertmanager
SCHEMA_PATH = layouts.OUTPUTS["schema"][0]
SPEC_DOC_PATH = layouts.OUTPUTS["spec_reference"][0]


# Every output, in the order a build reports their errors. Each is one module with the same
# shape, `files(project, layout) -> {path: content}`: the plan in, files out. A new output is
# one more module here.
OUTPUTS = (rules, kubernetes, promtool_tests, dashboard, runbooks, alertmanager, reference)


class Outputs(Mapping[str, str]):
    """Every output's content by repo-relative path. Those an earlier build kept whole
    (cache.KeptContent: a kept service's rule file, runbook pages and test files) are read when
    asked for, once; their digest is known unread (write_all needs no more of a file still as the
    last build wrote it)."""

    def __init__(self, contents: dict[str, str | cache.KeptContent]):
        self._contents = contents
        self._digests: dict[str, str] = {}

    def __getitem__(self, path: str) -> str:
        found = self._contents[path]
        if isinstance(found, cache.KeptContent):
            found = self._contents[path] = found.text()
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._contents)

    def __contains__(self, path: object) -> bool:  # (Mapping's asks for the content)
        return path in self._contents

    def __len__(self) -> int:
        return len(self._contents)

    def digest(self, path: str) -> str:
        """cache.text_digest of the output's content, read only if it is not kept; once."""
        if path not in self._digests:
            self._digests[path] = cache.content_digest(self._contents[path])
        return self._digests[path]


@dataclass
class Compiled:
    loaded: list[LoadedSpec]  # for error positions
    project: ProjectPlan  # what every output was written from
    files: Outputs  # repo-relative path -> content
    layout: Layout
    # The files of an output (rules, alertmanager) its checker (promtool, amtool) accepted while
    # validating: a build need not check them again while they are unchanged.
    proven: dict[ModuleType, dict[str, str]] = field(default_factory=dict)

    def is_proven(self, output: ModuleType, paths: list[str]) -> bool:
        """Whether the checker of `output` already accepted these files, and all of that output's, as they are now."""
        made = self.proven.get(output)
        return (
            made is not None
            and set(paths) <= set(made)
            and all(
                path in self.files and self.files.digest(path) == cache.content_digest(c) for path, c in made.items()
            )
        )

    @property
    def plans(self) -> dict[str, list[SloPlan]]:
        """Each service's SLO plans."""
        return {service.service: list(service.slos) for service in self.project.services}

    @cached_property
    def rules(self) -> dict[str, RuleFile]:
        """Each service's rule groups, with the SLO each rule was written for (built when asked:
        only a refused rule, traced back to its SLO, needs them beside the files)."""
        return {service.service: rule_file(service.slos) for service in self.project.services}


def spec_paths(root: Path, layout: Layout | None = None) -> list[Path]:
    """The spec files of the layout's slos folder (the folder only, not its subfolders)."""
    return (layout or layouts.load(root)).spec_paths(root)


def input_paths(root: Path, given: list[Path]) -> list[Path]:
    """Files and folders named on the command line, as the spec files they hold (a folder: its *.yaml, *.yml)."""
    found: list[Path] = []
    missing: list[SpecError] = []
    for path in given:
        if path.is_dir():
            files = layouts.yaml_files(path)
            if not files:
                missing.append(SpecError(_display(root, path), 1, 1, "", "no SLO files (*.yaml, *.yml) in this folder"))
            found += files
        elif path.is_file():
            found.append(path)
        else:
            missing.append(SpecError(_display(root, path), 1, 1, "", "no such file or folder"))
    if missing:
        raise SpecErrors(missing)
    return list(dict.fromkeys(found))


def _display(root: Path, path: Path) -> str:
    """How errors and headers name a spec: relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_all(root: Path, layout: Layout | None = None, specs: list[Path] | None = None) -> list[LoadedSpec]:
    """Every spec under the slos folder (or `specs`), validated and cross-checked; SpecErrors with all problems."""
    return load_project(root, layout, specs)[0]


def load_project(
    root: Path, layout: Layout | None = None, specs: list[Path] | None = None
) -> tuple[list[LoadedSpec], ProjectPlan]:
    """Every spec validated and cross-checked, and the project's plan; SpecErrors with all problems.

    The checks judge every part that validated, of every file, so one run reports every
    independent problem; the checks include what test generation needs (test traffic the
    selectors accept) without generating the tests. They plan what is sound: without errors,
    that is the whole project, planned once."""
    layout = layout or layouts.load(root)
    loaded, project, errors = _planned_project(root, layout, specs)
    errors += refused_outputs(loaded, project, layout)[0]
    if errors:
        raise SpecErrors(errors)
    return loaded, project


def _planned_project(
    root: Path, layout: Layout, specs: list[Path] | None, kept_specs: cache.KeptSpecs | None = None
) -> tuple[list[LoadedSpec], ProjectPlan, list[SpecError]]:
    """Every spec loaded, checked and planned where sound, with the problems found (promtool and
    amtool not asked yet). `kept_specs`: the files as earlier builds loaded and checked them."""
    loaded, windows, errors = [], [], []
    paths = spec_paths(root, layout) if specs is None else specs
    if not paths:
        raise SpecErrors([SpecError(layout.slos, 1, 1, "", "no SLO files (*.yaml, *.yml) found")])
    for path in paths:
        documents, problems = (kept_specs.loaded if kept_specs else load_file)(path, _display(root, path))
        errors += problems
        loaded += [_with_project_settings(d, layout) for d in documents if isinstance(d, LoadedSpec)]
        windows += [d for d in documents if isinstance(d, LoadedWindows)]
    own = kept_specs.checks(layout.compatibility, windows) if kept_specs else own_checks
    problems, project, loaded = check_all(loaded, windows, own)
    if windows and not loaded and not errors + problems:
        message = "the spec files hold Sloth AlertWindows and no SLO: nothing to compile"
        raise SpecErrors([SpecError(layout.slos, 1, 1, "", message)])
    return loaded, project, errors + problems


def _with_project_settings(item: LoadedSpec, layout: Layout) -> LoadedSpec:
    """The spec as compiled: modelmon.toml's `compatibility` where the file sets none."""
    if layout.compatibility is None or item.spec.compatibility is not None or "compatibility" in item.broken:
        return item
    return replace(item, spec=item.spec.model_copy(update={"compatibility": layout.compatibility}))


def refused_outputs(
    loaded: list[LoadedSpec],
    project: ProjectPlan,
    layout: Layout,
    known: cache.AcceptedRules | None = None,
    kept: cache.ServiceTexts | None = None,
) -> tuple[list[SpecError], dict[ModuleType, dict[str, str]]]:
    """promtool (`check rules`) and amtool (`check-config`) on what every SLO that planned makes,
    traced back to the spec: a query promtool refuses (a Sloth query's syntax, a raw ratio's) or a
    route amtool refuses is found by `validate` too, beside every other error of the run, not only
    when `build` proves its outputs. Also the files each checker accepted, by output module."""
    with Checking(loaded, project, layout, known, kept) as checking:
        return checking.verdict()


class Checking:
    """refused_outputs' work, asked at once and read when needed (`verdict()`): promtool checks
    the rule files in a process of its own while the build makes the other outputs. `made`: the
    files the checkers judge, by output module (what the build writes, if they accept them).
    Leaving the `with` block stops a check no one waited for and removes its files."""

    def __init__(
        self,
        loaded: list[LoadedSpec],
        project: ProjectPlan,
        layout: Layout,
        known: cache.AcceptedRules | None = None,
        kept: cache.ServiceTexts | None = None,
    ):
        self.loaded, self.layout = loaded, layout
        self.project = ProjectPlan(tuple(service for service in project.services if service.slos))
        self.known = known or cache.AcceptedRules(None)  # a build's cache: files accepted before
        self.kept = kept
        self.made: dict[ModuleType, dict[str, str]] = {}
        self._stack = contextlib.ExitStack()
        self._verdict: tuple[list[SpecError], dict[ModuleType, dict[str, str]]] | None = None
        self._rules_check: promtool.RulesCheck | None = None  # promtool's, on the files it has not accepted before

    def __enter__(self) -> Checking:
        try:
            if self.project.services:
                self._scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="modelmon-check-")))
                self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _start(self) -> None:
        project, layout = self.project, self.layout
        self.made[rules] = rules.files(project, layout, kept=self.kept)
        # promtool cannot parse MetricsQL: it checks the rest, with the stand-in the tests load, and
        # vmalert each MetricsQL query. The stand-in keeps every rule where it is, so errors name the same.
        metricsql = any(plan.metricsql for service in project.services for plan in service.slos)
        self._checked = rules.files(project, layout, stand_in=True, kept=self.kept) if metricsql else self.made[rules]
        # The files this promtool accepted before are not checked again.
        paths = []
        for index, (_, content) in enumerate(sorted(self._checked.items())):
            if not self.known.accepted(content):
                paths.append(self._scratch / f"{index}.yml")  # the service names its file: no name of ours here
                paths[-1].write_text(cache.content_text(content), encoding="utf-8")
        self._rules_check = self._stack.enter_context(promtool.RulesCheck(paths)) if paths else None
        config = alertmanager.files(project, layout)
        if layout.alertmanager in config:
            self.made[alertmanager] = config

    def judged(self) -> bool:
        """Whether verdict() would wait for no checker (promtool is done, or had nothing to check)."""
        return self._verdict is not None or self._rules_check is None or self._rules_check.finished()

    def verdict(self) -> tuple[list[SpecError], dict[ModuleType, dict[str, str]]]:
        """The errors promtool, vmalert and amtool find, and the files each checker accepted, by output module."""
        if self._verdict is None:
            self._verdict = self._judged() if self.project.services else ([], {})
        return self._verdict

    def _judged(self) -> tuple[list[SpecError], dict[ModuleType, dict[str, str]]]:
        project, layout, scratch = self.project, self.layout, self._scratch
        accepted: dict[ModuleType, dict[str, str]] = {}
        refused = _vmalert_errors(self.loaded, project)  # while promtool checks
        refused_config = []
        if made := self.made.get(alertmanager):
            # The config and its templates where they will be: amtool checks the templates it names too.
            for path, content in made.items():
                (scratch / "am" / path).parent.mkdir(parents=True, exist_ok=True)
                (scratch / "am" / path).write_text(content, encoding="utf-8")
            ok, output = amtool.check_config(scratch / "am" / layout.alertmanager)
            if ok:
                accepted[alertmanager] = made
            else:
                refused_config = _amtool_errors(self.loaded, output.replace(f"{scratch}/am/", ""), layout)
        ok, problems, output = self._rules_check.result() if self._rules_check else (True, [], "")
        errors: list[SpecError] = []
        if ok:
            self.known.keep(list(self._checked.values()))
            if not refused:
                accepted[rules] = self.made[rules]
        else:
            errors += _promtool_errors(self.loaded, project, problems, output.replace(f"{scratch}/", ""), layout)
        return errors + refused + refused_config, accepted


def _vmalert_errors(loaded: list[LoadedSpec], project: ProjectPlan) -> list[SpecError]:
    """vmalert's MetricsQL parser on each query of the SLIs that say they are MetricsQL (one run for
    them all), placed at the query's field; one error per field, as a broken query fails in every window."""
    plans = {(service.service, plan.name): plan for service in project.services for plan in service.slos}
    asked: list[tuple[LoadedSpec, FieldPath, str]] = []
    for item in loaded:
        service = getattr(item.spec, "service", None)  # a file whose service was refused planned nothing
        for index, slo in item.slos():
            plan = plans.get((service, slo.name))
            for sli_field, query in rules.metricsql_queries(plan) if plan else ():
                asked.append((item, ("slos", index, "sli", *sli_field), query))
    errors: dict[tuple, SpecError] = {}
    for at, problem in sorted(vmalert.query_errors([query for *_, query in asked]).items()):
        item, path, query = asked[at]
        if (id(item), path) not in errors:
            message = f"vmalert rejects the MetricsQL query {query!r}: {problem}"
            errors[id(item), path] = item.positions.error(path, message)
    return list(errors.values())


def _amtool_errors(loaded: list[LoadedSpec], output: str, layout: Layout) -> list[SpecError]:
    """amtool names no spec: its complaint goes to the notifications of every file that has them."""
    message = f"amtool check-config refuses the Alertmanager config these notifications make:\n{output.strip()}"
    found = [
        item.positions.error(("notifications",), message, at_key=True) for item in loaded if item.spec.notifications
    ]
    return found or [SpecError(layout.alertmanager, 1, 1, "", message)]


def compile_all(
    root: Path, layout: Layout | None = None, specs: list[Path] | None = None, memo: TestGroups | None = None
) -> Compiled:
    """Every output of the layout, in memory: `build` writes them, `validate` only reports the errors.

    `specs`: the spec files to compile (default: the layout's slos folder); `memo`: the promtool
    test groups earlier builds generated, by SLO plan (the one output that costs time per SLO)."""
    layout = layout or layouts.load(root)
    # What promtool accepted before is read and kept as the test groups are: --no-cache checks every
    # rule file again, validate and --check keep nothing.
    known = None if memo is None else cache.AcceptedRules(root, store=memo.store, read=memo.read)
    kept = None if memo is None else memo.services  # the texts made from one service's plan alone
    loaded, project, errors = _planned_project(root, layout, specs, None if memo is None else memo.specs)
    with contextlib.ExitStack() as stack:
        # A fresh build's many SLOs' tests are generated on every core from here, while the rest is made.
        tests = None if errors else stack.enter_context(promtool_tests.TestFiles(project, layout, memo))
        checking = stack.enter_context(Checking(loaded, project, layout, known, kept))
        if errors:
            raise SpecErrors(errors + checking.verdict()[0])
        # promtool judges the rule files while the other outputs are made: its errors are the build's,
        # before those of an SLO no test can prove.
        try:
            files = _outputs(project, layout, kept, checking, tests)
        except TestGenerationErrors as err:
            raise SpecErrors(checking.verdict()[0] or [_test_error(loaded, p) for p in err.errors]) from None
        refused, accepted = checking.verdict()
        if refused:
            raise SpecErrors(refused)
    return Compiled(loaded, project, files, layout, accepted)


def _outputs(
    project: ProjectPlan,
    layout: Layout,
    kept: cache.ServiceTexts | None,
    checking: Checking,
    tests: promtool_tests.TestFiles,
) -> Outputs:
    """Every output's files (in OUTPUTS' order); those the checkers judge as `checking` made them.
    The promtool tests come last, `tests` collected after promtool's verdict (a few SLOs' made
    while it checks, polled before each): a refused rule is the build's error, said before the
    long part, and a build that fails keeps no test group (the rest is made while promtool checks)."""
    made: dict[ModuleType, dict[str, str]] = {}
    for output in sorted(OUTPUTS, key=lambda output: output is promtool_tests):
        if output in checking.made:
            made[output] = checking.made[output]
        elif output is promtool_tests:
            made[output] = tests.files(before_generating=partial(_refused_first, checking))
        elif output is runbooks:
            made[output] = output.files(project, layout, kept)
        else:
            made[output] = output.files(project, layout)
    return Outputs({path: content for output in OUTPUTS for path, content in made[output].items()})


def _refused_first(checking: Checking, wait: bool) -> None:
    """Raise the checkers' errors: waiting for promtool's verdict (before the tests of many SLOs,
    generated on every core meanwhile, are collected, and before a few SLOs' are kept), or if it
    is in (before each SLO's of a few, made here while promtool checks)."""
    if (wait or checking.judged()) and (refused := checking.verdict()[0]):
        raise SpecErrors(refused)


def _test_error(loaded: list[LoadedSpec], problem: TestGenerationError) -> SpecError:
    """A spec no test traffic can prove, at the field that makes it so."""
    item = next(i for i in loaded if i.spec.service == problem.service)
    index = next(i for i, slo in enumerate(item.spec.slos) if slo.name == problem.slo)
    return item.positions.error(("slos", index, *problem.path), str(problem))


def stale_files(root: Path, files: Mapping[str, str], layout: Layout | None = None) -> list[str]:
    """Outputs whose committed content differs from the generator's, and generated files no spec makes any more."""
    stale = [path for path, content in files.items() if _read(root / path) != content]
    return sorted(stale + orphans(root, files, layout))


def orphans(root: Path, files: Mapping[str, str], layout: Layout | None = None) -> list[str]:
    """Generated files (they carry the mark) in the layout's output places that the build no longer makes."""
    return (layout or layouts.load(root)).orphans(root, files)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@dataclass
class Written:
    """What write_all did, for the build to report."""

    written: list[str]  # outputs whose content changed
    removed: list[str]  # generated files no spec makes any more
    checks: list[str]  # the checkers that passed the outputs before anything was written
    recovered: list[str]  # what was finished of an interrupted build first, in words


def write_all(root: Path, compiled: Compiled, key: str | None = None) -> Written:
    """Prove the rules with promtool and the Alertmanager config with amtool in a scratch folder,
    then replace every changed file and remove the orphans as one change (modelmon.transaction).
    `key`: the build's inputs key, recorded with the outputs as written (cache.remember), before
    the build lock is let go."""
    checks = []
    layout = compiled.layout
    # Every output path is the layout's, inside the project: one that is not (a plan of a kept
    # entry naming a service "../x") is a bug, never a file written outside.
    outside = [path for path in compiled.files if path.startswith("/") or ".." in path.split("/")]  # POSIX paths
    if outside:
        raise RuntimeError(f"refusing to write outside the project: {', '.join(map(repr, sorted(outside)[:3]))}")
    with transaction.locked(root), transaction.scratch_folder(root) as scratch:
        recovered = transaction.finish(root, keep=scratch)
        digests = {path: compiled.files.digest(path) for path in compiled.files}
        # An output whose status is what the last build recorded is what it wrote: its digest says
        # whether it changes, unread (a thousand SLOs' test files are 100 MB).
        recorded = cache.recorded_outputs(root)
        seen_at = cache.file_system_now(root)  # before looking: what changed within 2 s of it is not trusted
        status = {path: cache.status_of(os.path.join(root, path)) for path in compiled.files}
        written = sorted(
            path
            for path, digest in digests.items()
            if _changed(root / path, digest, cache.still_recorded(recorded, path, status[path]))
        )
        rule_paths = [layout.rules_path(service) for service in sorted(compiled.plans)]
        proven = compiled.is_proven(rules, rule_paths)
        needs_amtool = layout.alertmanager in compiled.files and not compiled.is_proven(
            alertmanager, [layout.alertmanager]
        )
        # Only what changes goes through the scratch folder, unless a checker still has to read
        # the outputs there (with the files they name: amtool reads the templates).
        staged = written if proven and not needs_amtool else compiled.files
        for path in sorted(staged):
            target = scratch / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(compiled.files[path], encoding="utf-8")
        if not proven:
            ok, problems, output = promtool.check_rules([scratch / path for path in rule_paths])
            if not ok:
                output = output.replace(f"{scratch}/", "")
                raise SpecErrors(_promtool_errors(compiled.loaded, compiled.project, problems, output, layout))
        checks.append("promtool check rules")
        if layout.alertmanager in compiled.files:
            if needs_amtool:
                ok, output = amtool.check_config(scratch / layout.alertmanager)
                if not ok:
                    raise SpecErrors(_amtool_errors(compiled.loaded, output.replace(f"{scratch}/", ""), layout))
            checks.append("amtool check-config")
        removed = orphans(root, compiled.files, layout)
        transaction.commit(root, scratch, written, removed)
        if key is not None:
            # What was not written is as it was seen (settled ones are recorded, fresh ones not).
            status.update({path: cache.status_of(root / path) for path in written})
            cache.remember(root, key, compiled.files, digests, status, seen_at)
    return Written(written, removed, checks, recovered)


def _changed(path: Path, digest: str, recorded: str | None) -> bool:
    """Whether the output at `path` differs from the content of `digest`: by `recorded`, the
    digest the last build recorded while the file's status is still the one recorded with it
    (cache.still_recorded), else by reading it (as text: line ends as Python reads them, as
    stale_files compares)."""
    if recorded is not None:
        return recorded != digest
    found = _read(path)
    return found is None or cache.text_digest(found) != digest


_INVALID_LABEL = re.compile(r"invalid label name: (?P<name>.*)")


def _info_label_path(item: LoadedSpec, index: int, problem: promtool.RuleProblem) -> FieldPath | None:
    """Where the info label promtool cannot read is written: the last info_labels/v1 plugin of the
    SLO's chain that sets it (as the plugin merges them), if `problem` is about one."""
    name = _INVALID_LABEL.fullmatch(problem.message)
    if problem.rule != SLOTH_INFO_RECORD or name is None:
        return None
    slo = item.spec.slos[index]
    for path, plugin in reversed(sloth.chain(getattr(item.spec, "slo_plugins", None), slo.plugins)):
        if plugin.id == sloth.INFO_LABELS and name["name"] in (plugin.config.get("labels") or {}):
            return (*sloth.in_file(path, index), "config", "labels", name["name"])
    return None


def _promtool_errors(
    loaded: list[LoadedSpec], project: ProjectPlan, problems: list[promtool.RuleProblem], output: str, layout: Layout
) -> list[SpecError]:
    """promtool's complaints, traced back to the SLO whose rule it refused."""
    errors: dict[tuple, SpecError] = {}
    plans = {service.service: service.slos for service in project.services}
    for item in loaded:
        service = getattr(item.spec, "service", None)  # a file whose service was refused planned nothing
        if service not in plans:
            continue
        owners = rule_file(plans[service]).owners
        planned = {plan.name for plan in plans[service]}
        indexes = {slo.name: index for index, slo in item.slos() if slo.name in planned}
        for problem in problems:
            owner = owners.get((problem.group, problem.index))
            if owner not in indexes:
                continue
            # A label name Prometheus 2 cannot read is a plugin's info label; else the query is the SLI's.
            label = _info_label_path(item, indexes[owner], problem)
            where = label or ("slos", indexes[owner], "sli")
            # One error per place (in its document) and complaint: a broken query fails in every window.
            key = (id(item), where, problem.message)
            if key not in errors:
                message = f"promtool rejects the generated rule {problem.rule}: {problem.message}"
                errors[key] = item.positions.error(where, message, at_key=label is not None)
    if not errors:
        return [SpecError(layout.rules, 1, 1, "", f"promtool check rules failed:\n{output.strip()}")]
    return list(errors.values())
