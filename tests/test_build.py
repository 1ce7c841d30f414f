"""`modelmon build` and `build --check`: all or nothing, and stale files named."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import ClassVar

import pytest

from modelmon import build, cache, cli
from modelmon.layout import GENERATED_MARK
from modelmon.loader import SpecErrors
from modelmon.outputs.promtool_tests import writer

REPO = Path(__file__).resolve().parent.parent
# Every file the shipped spec compiles into (rules, tests, dashboard, runbooks, ...).
SHIPPED = len(build.compile_all(REPO).files)
# Every checker a build runs on its outputs before writing any: the summary line names each.
CHECKS = "promtool check rules: ok, amtool check-config: ok"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "slos"
    }


def test_committed_outputs_are_what_the_generator_makes():
    """The repository's own rules, tests and schema are up to date with slos/."""
    compiled = build.compile_all(REPO)
    assert build.stale_files(REPO, compiled.files) == []


def test_check_names_each_stale_file_and_writes_nothing(models_project, capsys):
    rules = models_project / "rules" / "models-monitoring.yml"
    rules.write_text(rules.read_text() + "# hand edit\n")
    (models_project / "schema" / "slo.schema.json").unlink()
    before = snapshot(models_project)

    assert cli.main(["--root", str(models_project), "build", "--check"]) == cli.EXIT_STALE

    err = capsys.readouterr().err
    assert "  rules/models-monitoring.yml\n" in err
    assert "  schema/slo.schema.json\n" in err
    assert "prometheus/tests" not in err
    assert snapshot(models_project) == before


def test_check_passes_on_fresh_outputs(models_project, capsys):
    assert cli.main(["--root", str(models_project), "build", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_build_rewrites_only_what_changed_and_then_is_clean(models_project, capsys):
    spec = models_project / "slos" / "models.yaml"
    spec.write_text(spec.read_text().replace("objective: 99\n", "objective: 99.5\n"))

    assert cli.main(["--root", str(models_project), "build"]) == 0
    *wrote, summary = capsys.readouterr().out.splitlines()
    assert "wrote rules/models-monitoring.yml" in wrote
    assert "wrote schema/slo.schema.json" not in wrote
    assert all(line.startswith("wrote ") for line in wrote)
    assert summary == f"{SHIPPED} generated files, {len(wrote)} changed; {CHECKS}"
    assert "vector(0.995)" in (models_project / "rules" / "models-monitoring.yml").read_text()
    assert cli.main(["--root", str(models_project), "build", "--check"]) == 0
    assert not list(models_project.glob(".modelmon-build-*"))


def test_unchanged_rebuild_is_skipped_until_a_spec_or_an_output_changes(models_project, capsys, monkeypatch):
    root = ["--root", str(models_project)]
    assert cli.main([*root, "build"]) == 0
    capsys.readouterr()

    def no_compile(_root):
        raise AssertionError("compiled although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(build, "compile_all", no_compile)
        assert cli.main([*root, "build"]) == 0
        assert cli.main([*root, "build", "--check"]) == 0
    assert (
        capsys.readouterr().out.count(f"{SHIPPED} generated files are up to date (specs and generator unchanged") == 2
    )

    # A hand edit of an output is noticed: --check names it, build puts it back.
    rules = models_project / "rules" / "models-monitoring.yml"
    committed = rules.read_text()
    rules.write_text(committed + "# hand edit\n")
    assert cli.main([*root, "build", "--check"]) == cli.EXIT_STALE
    assert cli.main([*root, "build"]) == 0
    assert rules.read_text() == committed
    # A generated file no spec makes (brought back by a checkout) is not hidden by the cache.
    orphan = models_project / "rules" / "old-service.yml"
    orphan.write_text(f"# {GENERATED_MARK} from slos/old.yaml.\ngroups: []\n")
    assert cli.main([*root, "build", "--check"]) == cli.EXIT_STALE
    assert "  rules/old-service.yml\n" in capsys.readouterr().err
    assert cli.main([*root, "build"]) == 0
    assert not orphan.exists()
    # So is a spec edit, and --no-cache always compiles.
    spec = models_project / "slos" / "models.yaml"
    spec.write_text(spec.read_text().replace("objective: 99\n", "objective: 99.5\n"))
    assert cli.main([*root, "build", "--check"]) == cli.EXIT_STALE
    capsys.readouterr()
    spec.write_text(spec.read_text().replace("objective: 99.5\n", "objective: 99\n"))
    assert cli.main([*root, "build", "--no-cache"]) == 0
    assert capsys.readouterr().out == f"{SHIPPED} generated files, 0 changed; {CHECKS}\n"


def test_a_build_reads_no_output_whose_status_is_what_the_last_build_recorded(models_project, capsys, monkeypatch):
    """The record keeps each settled output's status (size, times, inode): an output whose status
    is still that is what the build wrote, and its digest says whether it changes, unread. Any
    edit since (in place, or a file put in its place) changes the status: it is read, and put back."""
    root = ["--root", str(models_project)]
    monkeypatch.setattr(build.cache, "SETTLED_NS", 0)  # every output recorded at once: no waiting here
    assert cli.main([*root, "build"]) == 0
    read: list[str] = []
    real_read = build._read
    monkeypatch.setattr(build, "_read", lambda path: read.append(path.name) or real_read(path))
    spec = models_project / "slos" / "models.yaml"
    spec.write_text(spec.read_text().replace("objective: 99\n", "objective: 99.5\n"))
    capsys.readouterr()
    assert cli.main([*root, "build"]) == 0
    assert read == []
    *wrote, _ = capsys.readouterr().out.splitlines()
    assert "wrote rules/models-monitoring.yml" in wrote
    assert build.stale_files(models_project, build.compile_all(models_project).files) == []
    read.clear()  # which read them all
    # What that build wrote changed after it looked (never trusted at once): the next build reads
    # it, and records it.
    assert cli.main([*root, "build", "--no-cache"]) == 0
    assert sorted(read) == sorted(line.removeprefix("wrote ").split("/")[-1] for line in wrote)
    read.clear()

    rules, index = models_project / "rules" / "models-monitoring.yml", models_project / "runbooks" / "index.md"
    written, listed = rules.read_text(), index.read_text()

    def edit_in_place():  # the same size, a later time
        rules.write_text(written.replace("vector(0.995)", "vector(0.996)"))
        stamp = os.stat(rules)
        os.utime(rules, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))

    edit_in_place()
    replacement = index.with_name("replacement")
    replacement.write_text(listed.replace("| 99", "| 98", 1))  # the same size, another file put in its place
    os.replace(replacement, index)
    assert cli.main([*root, "build"]) == 0
    assert sorted(read) == ["index.md", "models-monitoring.yml"]
    assert (rules.read_text(), index.read_text()) == (written, listed)
    # Nothing changed since: the build is skipped, unless an output's status says it was edited.
    assert cli.main([*root, "build"]) == 0
    assert capsys.readouterr().out.endswith(
        "generated files are up to date (specs and generator unchanged since the last build)\n"
    )
    edit_in_place()
    assert cli.main([*root, "build"]) == 0
    assert capsys.readouterr().out.startswith("wrote rules/models-monitoring.yml\n")
    assert rules.read_text() == written


def test_an_unchanged_build_records_the_outputs_it_had_to_read_once_they_settled(models_project, monkeypatch):
    """A build does not record the status of what it wrote (test below): the unchanged build after
    it reads those outputs, and records the status of those settled by then, so the next reads
    none. An edit since is still found; a check while a build holds the lock records nothing."""
    root = models_project
    assert cli.main(["--root", str(root), "build", "--no-cache"]) == 0
    key = json.loads((root / build.cache.CACHE_PATH).read_text())["key"]
    read: list[str] = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: read.append(path.name) or real_read(path))
    outputs = build.cache.outputs_current(root, key)
    assert outputs is not None and len(read) == len(outputs)  # every output, as none was settled
    monkeypatch.setattr(build.cache, "SETTLED_NS", 0)  # now they are
    with build.transaction.locked(root):  # a build is on: this check records nothing
        read.clear()
        assert build.cache.outputs_current(root, key) == outputs and len(read) == len(outputs)
    read.clear()
    assert build.cache.outputs_current(root, key) == outputs and len(read) == len(outputs)
    read.clear()
    assert build.cache.outputs_current(root, key) == outputs and read == []
    rules = root / "rules" / "models-monitoring.yml"
    text, stamp = rules.read_text(), os.stat(rules)
    rules.write_text(text.replace("record:", "recorD:", 1))  # the same size, in place, and its time
    os.utime(rules, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert build.cache.outputs_current(root, key) is None


def test_an_output_written_just_now_is_recorded_without_its_status(models_project):
    """Its status could still be that of a change made within the file system clock's tick: the
    next build reads it."""
    spec = models_project / "slos" / "models.yaml"
    spec.write_text(spec.read_text().replace("objective: 99\n", "objective: 99.5\n"))
    assert cli.main(["--root", str(models_project), "build"]) == 0
    record = json.loads((models_project / build.cache.CACHE_PATH).read_text())
    assert "rules/models-monitoring.yml" in record["outputs"]
    assert "rules/models-monitoring.yml" not in record["status"]


def test_removed_spec_removes_its_generated_files(models_project, capsys):
    spec = models_project / "slos" / "models.yaml"
    spec.rename(models_project / "slos" / "renamed.yaml")
    text = (models_project / "slos" / "renamed.yaml").read_text()
    (models_project / "slos" / "renamed.yaml").write_text(text.replace("service: models-monitoring", "service: llm"))

    assert cli.main(["--root", str(models_project), "build"]) == 0
    assert not (models_project / "rules" / "models-monitoring.yml").exists()
    assert not (models_project / "prometheus" / "tests" / "models-monitoring.test.yml").exists()
    assert (models_project / "rules" / "llm.yml").exists()
    lines = capsys.readouterr().out.splitlines()
    for path in ("rules/models-monitoring.yml", "prometheus/tests/models-monitoring.test.yml"):
        assert f"removed {path}" in lines
        assert f"wrote {path}" not in lines
    assert "wrote rules/llm.yml" in lines


def test_build_says_removed_for_a_generated_file_it_deletes_and_counts_it_apart(models_project, capsys):
    orphan = models_project / "rules" / "old-service.yml"
    orphan.write_text(f"# {GENERATED_MARK} from slos/old.yaml.\ngroups: []\n")

    assert cli.main(["--root", str(models_project), "build"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "removed rules/old-service.yml",
        f"{SHIPPED} generated files, 0 changed, 1 removed; {CHECKS}",
    ]
    assert not orphan.exists()


def test_orphans_are_found_in_every_folder_of_the_runbooks_and_by_the_mark_alone(models_project, capsys):
    """A page of a shared alert name stands three folders down, and a hidden name is a name: each
    generated file no spec makes is removed; a file without the mark is the user's."""
    marked = f"<!-- {GENERATED_MARK} from slos/old.yaml. -->\n# Old\n"
    deep = models_project / "runbooks" / "OldAlert" / "old" / "slo" / "index.md"
    deep.parent.mkdir(parents=True)
    for path, text in ((deep, marked), (models_project / "runbooks" / ".old.md", marked)):
        path.write_text(text)
    (models_project / "runbooks" / "notes.md").write_text("# Our notes\n")
    assert build.orphans(models_project, build.compile_all(models_project).files) == [
        "runbooks/.old.md",
        "runbooks/OldAlert/old/slo/index.md",
    ]
    assert cli.main(["--root", str(models_project), "build"]) == 0
    assert not deep.exists() and (models_project / "runbooks" / "notes.md").exists()
    capsys.readouterr()


# A raw SLI whose query promtool refuses (a parenthesis left open), at slos/broken.yaml:7:7.
BROKEN_RAW_SLI = (
    "version: modelmon/v1\n"
    "service: broken\n"
    "slos:\n"
    "  - name: raw-broken\n"
    "    objective: 99\n"
    "    sli:\n"
    "      raw:\n"
    "        error_ratio_query: sum(rate(model_errors_total[{{.window}}]) /\n"
)


class Watched(build.promtool.RulesCheck):
    """promtool's check, saying when it starts and when its verdict is asked for (in `said`);
    `done`: what finished() says (None: whether promtool's process has ended)."""

    said: ClassVar[list[str]] = []
    started: ClassVar[list[build.promtool.RulesCheck]] = []
    done: ClassVar[bool | None] = None

    def __init__(self, paths):
        self.said.append("promtool started")
        super().__init__(paths)
        self.started.append(self)

    def finished(self):
        if self.done is None:
            return super().finished()
        if self.done:
            self._process.wait()  # its verdict is in
        return self.done

    def result(self):
        self.said.append("promtool verdict")
        return super().result()


@pytest.fixture
def watched(monkeypatch) -> type[Watched]:
    """promtool's checks watched (Watched), and each SLO's tests as they are generated."""
    monkeypatch.setattr(Watched, "said", [])
    monkeypatch.setattr(Watched, "started", [])
    monkeypatch.setattr(build.promtool, "RulesCheck", Watched)
    runbook_files, made, runs = build.runbooks.files, writer._made, writer._Runs

    def runbooks(*args):
        # promtool not waited for yet (a check that waited as it started would have its exit code).
        done = Watched.started[0]._process.returncode is not None
        Watched.said.append("runbooks after promtool" if done else "runbooks")
        return runbook_files(*args)

    monkeypatch.setattr(build.runbooks, "files", runbooks)
    monkeypatch.setattr(
        writer, "_made", lambda plan, *a: Watched.said.append(f"tests of {plan.name}") or made(plan, *a)
    )

    class Runs(runs):
        def __init__(self, todo):
            Watched.said.append("started on every core")
            super().__init__(todo)

        def results(self):
            Watched.said.append("collected")
            return super().results()

    monkeypatch.setattr(writer, "_Runs", Runs)
    return Watched


def test_promtool_checks_the_rules_while_the_build_makes_the_other_outputs(models_project, watched, monkeypatch):
    """The rule files are rendered first and promtool started on them; the runbooks and the kept
    test files are made meanwhile, and a few SLOs' tests too while promtool still checks."""
    watched.done = False  # still checking, whenever asked
    compiled = build.compile_all(models_project)
    slos = [f"tests of {plan.name}" for plans in compiled.plans.values() for plan in plans]
    assert watched.said[:2] == ["promtool started", "runbooks"]
    assert sorted(watched.said[2:-1]) == sorted(slos) and len(slos) == 3
    assert watched.said[-1] == "promtool verdict"
    assert compiled.files == build.compile_all(models_project).files


def test_the_tests_of_many_slos_are_generated_on_every_core_from_the_start_and_taken_after_the_verdict(
    models_project, watched, monkeypatch
):
    monkeypatch.setattr(writer, "PARALLEL_FROM", 2)  # "many": the shipped project's three
    watched.done = False
    compiled = build.compile_all(models_project, memo=cache.TestGroups(models_project, store=False))
    assert watched.said == ["started on every core", "promtool started", "runbooks", "promtool verdict", "collected"]
    assert compiled.files == build.compile_all(models_project).files


def test_the_tests_made_while_promtool_checks_are_kept_only_once_it_accepted_the_rules(models_project, watched):
    """Generated before the verdict, and the verdict refuses: the build fails and keeps none of them."""
    (models_project / "slos" / "broken.yaml").write_text(BROKEN_RAW_SLI)
    watched.done = False  # still checking at every SLO
    memo = cache.TestGroups(models_project)
    with pytest.raises(SpecErrors, match="promtool rejects the generated rule"):
        build.compile_all(models_project, memo=memo)
    assert "tests of raw-broken" in watched.said and watched.said[-1] == "promtool verdict"
    groups = models_project / cache.TEST_GROUPS_DIR
    assert not groups.exists() or not list(groups.iterdir())


def test_a_refused_rule_stops_the_processes_generating_tests(models_project, watched, monkeypatch):
    """They were started before promtool's verdict: the build's error is said as soon as it is
    in, and no process is left generating."""
    monkeypatch.setattr(writer, "PARALLEL_FROM", 2)
    (models_project / "slos" / "broken.yaml").write_text(BROKEN_RAW_SLI)
    real, parent = writer._plan_groups, os.getpid()
    monkeypatch.setattr(writer, "_plan_groups", lambda plan: time.sleep(600) if os.getpid() != parent else real(plan))
    memo = cache.TestGroups(models_project)
    with pytest.raises(SpecErrors, match="promtool rejects the generated rule"):
        build.compile_all(models_project, memo=memo)
    assert watched.said == ["started on every core", "promtool started", "runbooks", "promtool verdict"]
    assert multiprocessing.active_children() == []
    memo.prune()  # what a build does once it went through: this one kept nothing
    assert not (models_project / cache.TEST_GROUPS_DIR).exists() or not list(
        (models_project / cache.TEST_GROUPS_DIR).iterdir()
    )


def test_no_slos_tests_are_generated_once_promtool_refused_a_rule(models_project, watched):
    """A refused rule is the build's error, said before the tests of the next SLO are generated."""
    (models_project / "slos" / "broken.yaml").write_text(BROKEN_RAW_SLI)
    watched.done = True  # the verdict is in at the first SLO
    with pytest.raises(SpecErrors, match="promtool rejects the generated rule"):
        build.compile_all(models_project)
    assert watched.said == ["promtool started", "runbooks", "promtool verdict"]


def test_a_rule_promtool_refuses_leaves_every_output_untouched(models_project, capsys):
    (models_project / "slos" / "broken.yaml").write_text(BROKEN_RAW_SLI)
    before = snapshot(models_project)

    assert cli.main(["--root", str(models_project), "build"]) == cli.EXIT_SPEC

    err = capsys.readouterr().err
    assert err.startswith(
        "slos/broken.yaml:7:7: slos[0].sli: promtool rejects the generated rule slo:sli_error:ratio_rate5m: "
        "could not parse expression"
    )
    assert snapshot(models_project) == before
    assert not list(models_project.glob(".modelmon-build-*"))


def test_schema_is_exported_for_editors_and_referenced_by_the_example():
    schema = json.loads((REPO / "schema" / "slo.schema.json").read_text())
    assert schema["$comment"].startswith("Generated by modelmon")
    assert set(schema["required"]) == {"version", "service", "slos"}
    slo = schema["$defs"]["Slo"]["properties"]
    assert slo["objective"]["description"]
    assert "# yaml-language-server: $schema=../schema/slo.schema.json" in (REPO / "slos" / "models.yaml").read_text()


def test_every_spec_field_is_documented_in_the_schema():
    schema = json.loads((REPO / "schema" / "slo.schema.json").read_text())
    undocumented = [
        f"{name}.{field}"
        for name, definition in [("SloFile", schema), *schema["$defs"].items()]
        for field, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []


def test_a_build_runs_promtool_and_amtool_once_each_and_checks_again_what_changed_after(models_project, monkeypatch):
    """validate's checks already proved the rules and the Alertmanager config; the build keeps that
    verdict for exactly those contents, and a file changed since is proven again before it lands."""
    calls: list[str] = []
    check_config = build.amtool.check_config

    class CountedRules(build.promtool.RulesCheck):
        def __init__(self, paths):
            calls.append("promtool")
            super().__init__(paths)

    def counted_config(path):
        calls.append("amtool")
        return check_config(path)

    monkeypatch.setattr(build.promtool, "RulesCheck", CountedRules)
    monkeypatch.setattr(build.amtool, "check_config", counted_config)
    compiled = build.compile_all(models_project)
    assert calls == ["promtool", "amtool"]
    build.write_all(models_project, compiled)
    assert calls == ["promtool", "amtool"]

    compiled = build.compile_all(models_project)
    [rules] = [path for path in compiled.files if path.startswith("rules/")]
    files = {**compiled.files, rules: compiled.files[rules] + "  - this is not a rule group\n"}
    compiled = dataclasses.replace(compiled, files=build.Outputs(files))
    calls.clear()
    with pytest.raises(build.SpecErrors):
        build.write_all(models_project, compiled)
    assert calls == ["promtool"]
    assert "this is not a rule group" not in (models_project / rules).read_text()
