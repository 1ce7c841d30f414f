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

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelmon import alertmanager, amtool, dashboard, kubernetes, promtool, runbooks, specdoc
from modelmon import layout as layouts
from modelmon.checks import check_all
from modelmon.layout import GENERATED_MARK, Layout
from modelmon.loader import LoadedSpec, SpecError, SpecErrors, load_file
from modelmon.plan import SloPlan, plan_project
from modelmon.promtool_tests import TestGenerationError, test_files
from modelmon.rules import RuleFile, rule_file
from modelmon.spec import json_schema

# The default layout's places (a project's modelmon.toml may move them; this repository's keeps them).
SLO_DIR = Layout.slos
RULES_DIR = Layout.rules
TESTS_DIR = Layout.promtool_tests
DASHBOARDS_DIR = Layout.dashboards
ALERTMANAGER_PATH = Layout.alertmanager
SCHEMA_PATH = layouts.OUTPUTS["schema"][0]
SPEC_DOC_PATH = layouts.OUTPUTS["spec_reference"][0]


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (PromQL reads as written), no anchors."""

    def ignore_aliases(self, data):
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100_000, allow_unicode=True)


@dataclass
class Compiled:
    loaded: list[LoadedSpec]
    plans: dict[str, list[SloPlan]]  # per service
    files: dict[str, str]  # repo-relative path -> content
    rules: dict[str, RuleFile]  # per service
    layout: Layout


def spec_paths(root: Path, layout: Layout | None = None) -> list[Path]:
    """The spec files of the layout's slos folder (the folder only, not its subfolders)."""
    return _yaml_files(root / (layout or layouts.load(root)).slos)


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and p.is_file())


def input_paths(root: Path, given: list[Path]) -> list[Path]:
    """Files and folders named on the command line, as the spec files they hold (a folder: its *.yaml, *.yml)."""
    found: list[Path] = []
    missing: list[SpecError] = []
    for path in given:
        if path.is_dir():
            files = _yaml_files(path)
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
    """Every spec under the slos folder (or `specs`), validated and cross-checked; SpecErrors with all problems.

    The checks judge every part that validated, of every file, so one run reports every
    independent problem; the checks include what test generation needs (test traffic the
    selectors accept) without generating the tests."""
    loaded, errors = [], []
    layout = layout or layouts.load(root)
    paths = spec_paths(root, layout) if specs is None else specs
    if not paths:
        raise SpecErrors([SpecError(layout.slos, 1, 1, "", "no SLO files (*.yaml, *.yml) found")])
    for path in paths:
        item, problems = load_file(path, _display(root, path))
        errors += problems
        if item is not None:
            loaded.append(item)
    errors += check_all(loaded)
    if errors:
        raise SpecErrors(errors)
    return loaded


def compile_all(root: Path, layout: Layout | None = None, specs: list[Path] | None = None) -> Compiled:
    """Every output of the layout, in memory: `build` writes them, `validate` only reports the errors.

    `specs`: the spec files to compile (default: the layout's slos folder)."""
    layout = layout or layouts.load(root)
    loaded = load_all(root, layout, specs)
    files: dict[str, str] = {}
    plans: dict[str, list[SloPlan]] = {}
    rule_files: dict[str, RuleFile] = {}
    errors: list[SpecError] = []
    project = plan_project([(item.spec, item.display) for item in loaded])
    for item, service_plan in zip(loaded, project.services, strict=True):
        service = service_plan.service
        header = layout.header([item.display])
        plans[service] = list(service_plan.slos)
        rules_path = layout.rules_path(service)
        rule_files[service] = rule_file(plans[service])
        groups = rule_files[service].groups
        files[rules_path] = header + dump_yaml({"groups": groups})
        if layout.kubernetes:
            rule = kubernetes.prometheus_rule(service, groups, item.display, layout.note([item.display]))
            files[layout.kubernetes_path(service)] = header + dump_yaml(rule)
        # Generated whether or not the tests are written: a spec no test traffic can prove is an error.
        tests_dir = layout.promtool_tests or layouts.OUTPUTS["promtool_tests"][0]
        try:
            tests = test_files(plans[service], os.path.relpath(rules_path, tests_dir), rule_files[service].group_names)
        except TestGenerationError as err:
            index = next(i for i, p in enumerate(plans[service]) if p.name == err.slo)
            errors.append(item.positions.error(("slos", index, *err.path), str(err)))
            continue
        if service_plan.dashboard is not None and layout.dashboards:
            board = dashboard.build(service_plan, layout.note([item.display]))
            files[layout.dashboard_path(item.spec.dashboard.uid)] = json.dumps(board, indent=2) + "\n"
        if layout.promtool_tests:
            for every, content in tests.items():
                files[layout.tests_path(service, every)] = header + dump_yaml(content)
    if errors:
        raise SpecErrors(errors)
    if layout.runbooks:
        pages = runbooks.render_all(project, GENERATED_MARK, layout.command)
        files.update({layout.runbook_path(path, runbooks.RUNBOOKS_DIR): text for path, text in pages.items()})
    if layout.alertmanager and any(item.spec.notifications is not None for item in loaded):
        header = layout.header([i.display for i in loaded])
        files[layout.alertmanager] = header + dump_yaml(alertmanager.config(project))
        files[layout.alertmanager_templates_path()] = alertmanager.templates(header.strip("# \n"))
    if layout.schema:
        files[layout.schema] = schema_text(layout.command)
    if layout.spec_reference:
        files[layout.spec_reference] = specdoc.render(layout.command)
    return Compiled(loaded, plans, files, rule_files, layout)


def schema_text(command: str) -> str:
    schema = {"$comment": f"{GENERATED_MARK} from modelmon/spec.py. Do not edit: run `{command}`.", **json_schema()}
    return json.dumps(schema, indent=2) + "\n"


def stale_files(root: Path, files: dict[str, str], layout: Layout | None = None) -> list[str]:
    """Outputs whose committed content differs from the generator's, and generated files no spec makes any more."""
    stale = [path for path, content in files.items() if _read(root / path) != content]
    return sorted(stale + orphans(root, files, layout))


def orphans(root: Path, files: dict[str, str], layout: Layout | None = None) -> list[str]:
    """Generated files (they carry the mark) in the layout's output places that the build no longer makes."""
    found = []
    for pattern in (layout or layouts.load(root)).generated_patterns():
        for path in sorted(root.glob(pattern)):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and relative not in files and GENERATED_MARK in (_read(path) or "")[:200]:
                found.append(relative)
    return sorted(set(found))


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


def write_all(root: Path, compiled: Compiled) -> Written:
    """Prove the rules with promtool and the Alertmanager config with amtool in a scratch folder,
    then move every changed file into place and remove the orphans."""
    checks = []
    with tempfile.TemporaryDirectory(prefix=".modelmon-build-", dir=root) as scratch:
        scratch_root = Path(scratch)
        for path, content in compiled.files.items():
            target = scratch_root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        layout = compiled.layout
        rules = [scratch_root / layout.rules_path(service) for service in sorted(compiled.rules)]
        ok, problems, output = promtool.check_rules(rules)
        if not ok:
            raise SpecErrors(_promtool_errors(compiled, problems, output.replace(f"{scratch}/", "")))
        checks.append("promtool check rules")
        if layout.alertmanager in compiled.files:
            ok, output = amtool.check_config(scratch_root / layout.alertmanager)
            if not ok:
                message = f"amtool check-config refuses the generated Alertmanager config:\n{output.strip()}"
                raise SpecErrors([SpecError(layout.alertmanager, 1, 1, "", message.replace(f"{scratch}/", ""))])
            checks.append("amtool check-config")
        written = [path for path in stale_files(root, compiled.files, layout) if path in compiled.files]
        for path in written:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch_root / path, root / path)
    removed = orphans(root, compiled.files, compiled.layout)
    for path in removed:
        (root / path).unlink()
    return Written(written, removed, checks)


def _promtool_errors(compiled: Compiled, problems: list[promtool.RuleProblem], output: str) -> list[SpecError]:
    """promtool's complaints, traced back to the SLO whose rule it refused."""
    errors: dict[tuple, SpecError] = {}
    for item in compiled.loaded:
        service = item.spec.service
        names = [plan.name for plan in compiled.plans[service]]
        for problem in problems:
            owner = compiled.rules[service].owners.get((problem.group, problem.index))
            # One error per SLO and complaint: a broken query fails in every window.
            key = (item.display, owner, problem.message)
            if owner in names and key not in errors:
                errors[key] = item.positions.error(
                    ("slos", names.index(owner), "sli"),
                    f"promtool rejects the generated rule {problem.rule}: {problem.message}",
                )
    if not errors:
        return [SpecError(compiled.layout.rules, 1, 1, "", f"promtool check rules failed:\n{output.strip()}")]
    return list(errors.values())
