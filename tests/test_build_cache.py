"""The promtool test groups a build keeps (.modelmon/test-groups): outputs byte for byte those of
the straightforward path (every group generated, each file dumped whole), and only the SLOs
whose plan changed generated again."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelmon import build, cache, cli, promtool
from modelmon.loader import SpecErrors
from modelmon.outputs import rules as rules_output
from modelmon.outputs import runbooks
from modelmon.outputs.promtool_tests import traffic, writer
from tests import binaries
from tests.conftest import REPO
from tests.test_backfill import RAW_SLI
from tests.test_sloth import SLOTH_EXAMPLE
from tests.test_sloth_inputs import SEVEN_DAYS
from tests.test_sloth_names import compatible

SPECS = {
    "s.yaml": SLOTH_EXAMPLE,
    "r.yaml": RAW_SLI,
    "n.yaml": compatible(SLOTH_EXAMPLE, "28d").replace("myservice", "named"),
}


def straightforward(root) -> dict[str, str]:
    return build.compile_all(root).files


def test_kept_groups_make_the_files_the_straightforward_path_makes(project):
    root = project(SPECS)
    first = cache.TestGroups(root)
    assert build.compile_all(root, memo=first).files == straightforward(root)
    assert first.missed == 3
    again = cache.TestGroups(root)
    assert build.compile_all(root, memo=again).files == straightforward(root)
    assert again.missed == 0


def test_a_group_whose_last_string_ends_in_line_breaks_does_not_end_the_file(project):
    """Dumped alone, such a group ends its document with `...`: promtool would read no group after it."""
    ending = SLOTH_EXAMPLE.replace(
        "      page_alert:\n", '      outage_alert: {annotations: {note: "x\\n\\n"}}\n      page_alert:\n'
    )
    root = project({"a.yaml": ending, "b.yaml": SLOTH_EXAMPLE.replace("myservice", "other")})
    files = build.compile_all(root, memo=cache.TestGroups(root)).files
    assert files == straightforward(root)
    text = files["prometheus/tests/myservice.test.yml"]
    assert "\n...\n" not in text[:-4] and len(yaml.safe_load(text)["tests"]) > 1


def test_one_slo_changed_generates_that_slos_groups_alone(project):
    root = project(SPECS)
    build.compile_all(root, memo=cache.TestGroups(root))
    spec = root / "slos" / "s.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.9", "objective: 99.5"))
    memo = cache.TestGroups(root)
    assert build.compile_all(root, memo=memo).files == straightforward(root)
    assert memo.missed == 1


def test_a_damaged_or_foreign_entry_is_generated_again(project):
    root = project(SPECS)
    build.compile_all(root, memo=cache.TestGroups(root))
    entries = sorted((root / cache.TEST_GROUPS_DIR).iterdir())
    forged = b"- name: forged\n"
    entries[0].write_text("{not json")
    # Another plan's entry, of the right shape (its digest too).
    other = {"plan": "another plan", "contents": [["60", len(forged), hashlib.sha256(forged).hexdigest()]]}
    entries[1].write_bytes(json.dumps(other).encode() + b"\n" + forged)
    # Its own plan, a part damaged (its digest differs).
    entries[2].write_bytes(entries[2].read_bytes().replace(b"eval_time", b"eval_tim3", 1))
    memo = cache.TestGroups(root)
    assert build.compile_all(root, memo=memo).files == straightforward(root)
    assert memo.missed == 3
    memo.prune()
    texts = sorted((root / cache.SERVICE_TEXTS_DIR).iterdir())  # rule files, pages, index rows, test files

    def head(entry: Path) -> tuple[dict, bytes]:
        line, rest = entry.read_bytes().split(b"\n", 1)
        return json.loads(line), rest

    # A service's rule file, pages and test files are found by their entry's head and read when
    # asked for (cache.KeptContent; a part damaged then: test_kept_outputs_are_read_only_...).
    whole = [e for e in texts if head(e)[0]["plan"].startswith(("rules stand_in", "runbooks ", "promtool tests"))]
    damages = [
        lambda found, rest: (
            json.dumps({**found, "contents": [["60", -1, "x"]]}).encode(),
            rest,
        ),  # a head of another shape
        lambda found, rest: (json.dumps(found).encode(), rest[:-1]),  # cut short
        # parts of another shape: a text without a name among named ones, or alone
        lambda found, rest: (
            json.dumps(
                {
                    **found,
                    "contents": [
                        [None, *found["contents"][0][1:]],
                        *(found["contents"][1:] or [["", 0, hashlib.sha256(b"").hexdigest()]]),
                    ],
                }
            ).encode(),
            rest,
        ),
    ]
    eager = [e for e in texts if e not in whole]  # index rows, each SLO's pages: read whole
    for entry, damage in [*((e, damages[0]) for e in whole), *((e, damages[at % 3]) for at, e in enumerate(eager))]:
        line, rest = damage(*head(entry))
        entry.write_bytes(line + b"\n" + rest)
    again = cache.TestGroups(root)
    assert build.compile_all(root, memo=again).files == straightforward(root)
    assert (len(whole), len(eager)) == (3 * 3, 3 * 2) and set(again.services._made) == {
        entry.stem for entry in texts
    }  # made again, each


def test_a_build_forgets_the_groups_of_slos_it_no_longer_has(project, capsys):
    root = project(SPECS)
    assert cli.main(["--root", str(root), "build"]) == 0
    assert len(list((root / cache.TEST_GROUPS_DIR).iterdir())) == 3
    (root / "slos" / "r.yaml").unlink()
    assert cli.main(["--root", str(root), "build"]) == 0
    assert len(list((root / cache.TEST_GROUPS_DIR).iterdir())) == 2
    capsys.readouterr()


def test_the_key_of_a_plan_is_the_same_in_every_process(project):
    """A plan holds sets (alert names several services share), whose order follows string hashing."""
    shared = SLOTH_EXAMPLE.replace(
        "      page_alert:\n", "      outage_alert: {name: SharedOutage}\n      page_alert:\n"
    )
    root = project({"a.yaml": shared, "b.yaml": shared.replace("myservice", "other")})
    plans = [p for plans in build.compile_all(root).plans.values() for p in plans]
    assert all(len(p.shared_alerts) == 2 for p in plans)  # the burn-rate and outage alerts' names
    script = (
        "import sys; from pathlib import Path; from modelmon import build, cache; "
        f"root = Path({str(root)!r}); memo = cache.TestGroups(root); "
        "print(sorted(memo.key(p) for ps in build.compile_all(root).plans.values() for p in ps))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1


def test_groups_made_by_several_processes_are_the_straightforward_paths(project, monkeypatch):
    """Many SLOs to generate go to one forked process per core, each taking whole shapes: the
    files are the same text as one process makes without a memo, and each SLO's groups are kept."""
    assert len(os.sched_getaffinity(0)) >= 2, "one core: this test would compare one process with itself"
    root = project(SPECS)
    pools = []

    class Counted(writer._Runs):
        def __init__(self, todo):
            super().__init__(todo)
            pools.append(len({process.pid for process, _ in self.started} - {os.getpid()}))

    monkeypatch.setattr(writer, "_Runs", Counted)
    monkeypatch.setattr(writer, "PARALLEL_FROM", 1)
    memo = cache.TestGroups(root)
    assert build.compile_all(root, memo=memo).files == straightforward(root)
    assert pools == [2] and memo.missed == 3
    assert build.compile_all(root, memo=cache.TestGroups(root)).files == straightforward(root)


def test_the_processes_take_chunks_of_whole_shapes():
    """Each chunk a process takes holds whole shapes (their SLOs share a simulation), about equal in
    length, and together the SLOs in their order."""
    keys = list("aaabbccccdeeeeeeef")
    chunks = writer._at_shape_boundaries(keys, 6)
    assert [k for first, end in chunks for k in keys[first:end]] == keys
    shapes = [set(keys[first:end]) for first, end in chunks]
    assert all(not a & b for i, a in enumerate(shapes) for b in shapes[i + 1 :])
    assert chunks == [(0, 3), (3, 9), (9, 17), (17, 18)]  # a cut inside a shape moves to its end
    assert writer._at_shape_boundaries(list("aaaa"), 3) == [(0, 4)]


def test_the_processes_make_every_chunk_before_the_build_takes_any(monkeypatch):
    """The build takes the processes' results once it has made its other outputs, seconds in; a
    chunk too big for the pipe must not keep its process from making the next one meanwhile."""
    assert len(os.sched_getaffinity(0)) >= 2, "one core: no processes to watch"
    made_r, made_w = os.pipe()

    def made(plan, dumped):
        os.write(made_w, b".")  # one byte per SLO made, in whichever process
        return [(None, f"{plan}:" + "x" * 1_000_000)]  # far more than a pipe holds (64 KiB)

    monkeypatch.setattr(writer, "_made", made)
    monkeypatch.setattr(writer, "plan_shape", lambda plan: plan)  # each SLO its own chunk
    runs = writer._Runs(list(range(6)))
    try:
        assert len(runs.started) == 2 and len(runs.chunks) == 6
        seen = b""
        while len(seen) < 6 and select.select([made_r], [], [], 60)[0]:
            seen += os.read(made_r, 6)
        assert seen == b"......"  # each process made all it took, none of it read yet
        assert runs.results() == [made(n, True) for n in range(6)]
    finally:
        runs.stop()
        os.close(made_r)
        os.close(made_w)


def test_a_process_that_raises_ends_and_leaves_the_chunks_it_did_not_send_to_the_build(monkeypatch):
    """Not a TestGenerationError (a bug, memory): the process ends all the same, having sent what
    it made, and the build makes the rest."""
    parent = os.getpid()

    def made(plan, dumped):
        if os.getpid() != parent and plan % 2:
            raise MemoryError
        return [(None, f"{plan}")]

    monkeypatch.setattr(writer, "_made", made)
    monkeypatch.setattr(writer, "plan_shape", lambda plan: plan)
    runs = writer._Runs(list(range(6)))
    try:
        for process, _ in runs.started:
            process.join(60)
            assert process.exitcode == 1
        assert runs.results() == [made(n, True) for n in range(6)]
    finally:
        runs.stop()


def test_a_generating_process_that_dies_leaves_its_slos_to_the_build(project, monkeypatch):
    """Killed (out of memory, a crash): its SLOs are generated here, and the build ends with the
    same files, neither hanging nor failing."""
    real, parent = writer._plan_groups, os.getpid()

    def dying(plan):
        if os.getpid() != parent and plan.service == "named":
            os._exit(3)
        return real(plan)

    monkeypatch.setattr(writer, "_plan_groups", dying)  # forked processes inherit it
    monkeypatch.setattr(writer, "PARALLEL_FROM", 1)
    root = project(SPECS)
    assert build.compile_all(root, memo=cache.TestGroups(root)).files == straightforward(root)


def test_an_slo_without_tests_is_named_whichever_process_generated_it(project, monkeypatch):
    """The error crosses back from the process that met it, placed at the SLO's field as ever."""
    real = writer._plan_groups

    def failing(plan):
        if plan.service == "named":
            raise traffic.TestGenerationError(("sli",), "no traffic proves it")
        return real(plan)

    monkeypatch.setattr(writer, "_plan_groups", failing)  # forked processes inherit it
    monkeypatch.setattr(writer, "PARALLEL_FROM", 1)
    root = project(SPECS)
    with pytest.raises(SpecErrors) as raised:
        build.compile_all(root, memo=cache.TestGroups(root))
    [error] = raised.value.errors
    assert str(error).startswith("slos/n.yaml:") and str(error).endswith(": slos[0].sli: no traffic proves it")


def counted_checks(monkeypatch) -> list[int]:
    """How many rule files each `promtool check rules` of the test is given, in order."""
    asked: list[int] = []

    class Counted(promtool.RulesCheck):
        def __init__(self, paths):
            asked.append(len(paths))
            super().__init__(paths)

    monkeypatch.setattr(promtool, "RulesCheck", Counted)
    return asked


def test_promtool_checks_only_the_rule_files_it_has_not_accepted_before(project, monkeypatch):
    """promtool judges each rule file alone: after one service changed, that file alone is checked;
    another promtool binary checks them all again, and a file it refuses is never remembered."""
    root = project(SPECS)
    asked = counted_checks(monkeypatch)
    build.compile_all(root, memo=cache.TestGroups(root))
    build.compile_all(root, memo=cache.TestGroups(root))  # all accepted before: promtool is not run
    (root / "slos" / "r.yaml").write_text(RAW_SLI.replace("objective: 99", "objective: 98", 1))
    build.compile_all(root, memo=cache.TestGroups(root))
    monkeypatch.setenv("MODELMON_PROMTOOL", binaries.debian("promtool"))
    build.compile_all(root, memo=cache.TestGroups(root))
    assert asked == [3, 1, 3]
    broken = RAW_SLI.replace("sum(rate(errors[{{.window}}]))", "sum(rate(errors[{{.window}}])", 1)
    (root / "slos" / "r.yaml").write_text(broken)
    for _ in range(2):  # refused, and refused again: never remembered as accepted
        with pytest.raises(SpecErrors, match="promtool rejects the generated rule"):
            build.compile_all(root, memo=cache.TestGroups(root))
    assert asked[-2:] == [1, 1]


def test_a_promtool_behind_a_wrapper_or_no_cache_checks_every_rule_file_again(project, monkeypatch, tmp_path):
    """A wrapper script (an asdf shim, a docker run) keeps its path, size and time whatever it runs:
    promtool's --version tells them apart. `build --no-cache` checks every file whatever is known."""
    root = project(SPECS)
    asked = counted_checks(monkeypatch)
    wrapper = tmp_path / "promtool"
    wrapper.write_text('#!/bin/sh\nexec "$REAL_PROMTOOL" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("MODELMON_PROMTOOL", str(wrapper))
    for real_promtool in (binaries.pinned("promtool"), binaries.pinned("promtool"), binaries.debian("promtool")):
        monkeypatch.setenv("REAL_PROMTOOL", real_promtool)
        build.compile_all(root, memo=cache.TestGroups(root))
    build.compile_all(root, memo=cache.TestGroups(root, read=False))
    assert asked == [3, 3, 3]  # the pinned one again: nothing to check


def test_kept_service_texts_make_the_files_the_straightforward_path_makes(project):
    """A service's rule file, runbook pages and test files are kept by its plan once a build went
    through, and each SLO's pages by its own plan: the next build takes them as they were, and
    after one SLO changed makes that service's again (a kept text of the old plan would be a
    wrong output, not a slow one)."""
    root = project(SPECS)
    first = cache.TestGroups(root)
    build.compile_all(root, memo=first)
    first.prune()  # what a build does once it went through
    # Each service's rule file, runbook pages, index rows and test files; each SLO's pages.
    kept = [entry.suffix for entry in (root / cache.SERVICE_TEXTS_DIR).iterdir()]
    assert kept == [cache.ENTRY_SUFFIX] * (3 * 4 + 3)
    again = cache.TestGroups(root)
    assert build.compile_all(root, memo=again).files == straightforward(root)
    assert again.services._made == {}  # every text was kept
    (root / "slos" / "r.yaml").write_text(RAW_SLI.replace("objective: 99", "objective: 98", 1))
    changed = cache.TestGroups(root)
    assert build.compile_all(root, memo=changed).files == straightforward(root)
    # That service's rules, runbooks, index rows and its SLO's pages, and its test files.
    assert len(changed.services._made) == 5
    assert changed.missed == 1


def test_kept_outputs_are_read_only_where_the_file_is_not_as_the_last_build_wrote_it(project, monkeypatch):
    """A kept service's rule file, runbook pages and test files are taken by their digest, unread,
    while each file on disk has the status the last build recorded; one gone or edited is written
    again from its kept content (a rule file), or made again where that entry is gone or damaged
    by then, or holds the digests alone (pages and test files, made from each SLO's entries)."""
    monkeypatch.setattr(cache, "SETTLED_NS", 0)  # every status settled: no wait in a test
    root = project(SPECS)
    assert cli.main(["--root", str(root), "build"]) == 0
    (root / "slos" / "r.yaml").write_text(RAW_SLI.replace("objective: 99", "objective: 98", 1))
    memo = cache.TestGroups(root)
    compiled = build.compile_all(root, memo=memo)
    memo.prune()

    def unread() -> set[str]:
        return {path for path, found in compiled.files._contents.items() if isinstance(found, cache.KeptContent)}

    kept = unread()
    pages = {p for p in compiled.files if p.startswith("runbooks/") and p != "runbooks/index.md"}
    outputs = {  # of the two services whose plans are as they were (r.yaml changed: "raw")
        service: {f"rules/{service}.yml"}
        | {p for p in compiled.files if p.startswith(f"prometheus/tests/{service}.")}
        | {p for p in pages if f"/{service}/" in p or p.split("/")[-1].lower().startswith(service)}
        for service in ("myservice", "named")
    }
    assert all(len(found) == 6 for found in outputs.values()) and kept == outputs["myservice"] | outputs["named"]
    gone_test, edited_rules, gone_page = "prometheus/tests/myservice.test.yml", "rules/named.yml", min(pages & kept)
    gone_rules = "rules/myservice.yml"  # its entry intact: read from it
    (root / gone_test).unlink()
    (root / edited_rules).write_text((root / edited_rules).read_text() + "# edited\n")
    (root / gone_page).unlink()
    (root / gone_rules).unlink()
    # The kept entries by what they are and the rule file (tests) or header (rules) they read:
    # the first parts of what their key digests.
    entries = {
        tuple(json.loads(entry.read_bytes().split(b"\n", 1)[0])["plan"].split("\0")[:2]): entry
        for entry in (root / cache.SERVICE_TEXTS_DIR).glob("*.contents")
    }
    entries["promtool tests", "../../rules/myservice.yml"].unlink()  # as another build's prune would
    (named_rules,) = (
        entry for (kind, header), entry in entries.items() if kind == "rules stand_in=False" and "slos/n.yaml" in header
    )
    named_rules.write_bytes(named_rules.read_bytes().replace(b"record:", b"rec0rd:", 1))  # damaged
    rendered: list[str] = []
    rule_text = rules_output._text
    monkeypatch.setattr(
        rules_output, "_text", lambda service, *a: rendered.append(service.service) or rule_text(service, *a)
    )
    written = build.write_all(root, compiled).written
    assert rendered == ["named"]  # myservice's rule file taken from its entry
    again = {gone_test, edited_rules, gone_page, gone_rules}
    assert again <= set(written) and not set(written) & (kept - again)
    assert unread() == kept - again  # the others' files unread
    assert {path: (root / path).read_text() for path in compiled.files} == straightforward(root)


TWO_SLOS = (
    RAW_SLI
    + """\
  - name: other
    objective: 99.5
    sli:
      raw:
        error_ratio_query: sum(rate(failures[{{.window}}])) / sum(rate(requests[{{.window}}]))
    alerting: {name: OtherBurn}
"""
)


def test_a_changed_slo_renders_its_own_pages_and_tests_alone_after_builds_that_kept_its_service_whole(
    project, monkeypatch
):
    """A build that takes a service's pages and test files whole reads none of its SLOs' own
    entries, and keeps them still: when one SLO changes next, the other's pages and test groups
    are there to take (a prune that forgot them would render and generate both)."""
    root = project({"r.yaml": TWO_SLOS})
    kept_build(root)
    kept_build(root)  # the service taken whole
    rendered = []
    render_page = runbooks.render_page
    monkeypatch.setattr(
        runbooks, "render_page", lambda page, *a: rendered.append(page.plan.name) or render_page(page, *a)
    )
    (root / "slos" / "r.yaml").write_text(TWO_SLOS.replace("objective: 99.5", "objective: 99.1"))
    memo = cache.TestGroups(root)
    files = build.compile_all(root, memo=memo).files
    assert (set(rendered), memo.missed) == ({"other"}, 1)
    assert files == straightforward(root)


def test_kept_runbook_pages_follow_what_they_read_of_their_service(project):
    """An SLO's pages are kept by its plan and what they read of the service besides: the header
    (the spec file's name), the model families and the dashboard's links. A change to one of
    those alone, an SLO's plan as it was, renders its pages again (kept_build compares)."""
    models = (REPO / "slos" / "models.yaml").read_text()
    root = project({"models.yaml": models})
    kept_build(root)
    (root / "slos" / "models.yaml").rename(root / "slos" / "llm.yaml")
    renamed = kept_build(root)
    assert renamed.missed == 0  # the plans are as they were: their tests are kept
    families = "  families:\n    - {name: Claude, pattern: 'claude.*'}\n    - {name: Llama, pattern: '.*llama.*'}\n"
    changed = models.replace("  uid: models-monitoring\n", "  uid: llm-board\n" + families)
    (root / "slos" / "llm.yaml").write_text(changed)
    kept_build(root)
    # Another SLO gone: the panels after its own move up, and the others' pages link to new ids.
    availability = models[models.index("  - name: availability") : models.index("  - name: error-rate")]
    (root / "slos" / "llm.yaml").write_text(changed.replace(availability, ""))
    kept_build(root)


def test_a_build_that_fails_keeps_no_service_text(project):
    root = project(SPECS)
    (root / "slos" / "r.yaml").write_text(RAW_SLI.replace("[{{.window}}]))", "[{{.window}}])", 1))
    memo = cache.TestGroups(root)
    with pytest.raises(SpecErrors):
        build.compile_all(root, memo=memo)
    assert not (root / cache.SERVICE_TEXTS_DIR).exists()


# The spec files as loaded and checked (.modelmon/specs): a build after one file changed loads and
# checks that one; every check across files still sees them all.


def kept_build(root) -> cache.TestGroups:
    """A whole build with the build's memo, as `modelmon build` makes it (kept once it went through)."""
    memo = cache.TestGroups(root)
    assert build.compile_all(root, memo=memo).files == straightforward(root)
    memo.prune()
    return memo


def test_kept_specs_load_and_check_only_the_file_that_changed(project):
    root = project(SPECS)
    first = kept_build(root)
    assert (first.specs.loads, first.specs.checked) == (3, 3)
    again = kept_build(root)
    assert (again.specs.loads, again.specs.checked) == (0, 0)
    assert again.missed == 0  # the kept plans are the plans the groups were kept by
    spec = root / "slos" / "r.yaml"
    spec.write_text(spec.read_text().replace("objective: 99", "objective: 98", 1))
    changed = kept_build(root)
    assert (changed.specs.loads, changed.specs.checked, changed.missed) == (1, 1, 1)
    (root / "slos" / "n.yaml").unlink()
    kept_build(root)
    assert len(list((root / cache.SPECS_DIR).glob("*.pickle"))) == 2  # the gone file forgotten


def test_a_kept_file_is_planned_again_when_another_stops_sharing_its_alert_name(project):
    """s.yaml and n.yaml share the alert name MyServiceHighErrorRate (each alert then links to its
    own service's runbook page): when n.yaml renames its alert, s.yaml, kept, must link as alone."""
    root = project(SPECS)
    kept_build(root)
    before = straightforward(root)
    named = root / "slos" / "n.yaml"
    named.write_text(named.read_text().replace("name: MyServiceHighErrorRate", "name: NamedHighErrorRate"))
    changed = kept_build(root)  # which compares with the straightforward path
    assert changed.specs.loads == 1
    after = straightforward(root)
    assert after["rules/myservice.yml"] != before["rules/myservice.yml"]


def test_checks_across_files_judge_kept_files(project):
    root = project(SPECS)
    kept_build(root)
    named = root / "slos" / "n.yaml"
    named.write_text(named.read_text().replace('service: "named"', 'service: "myservice"'))
    memo = cache.TestGroups(root)
    with pytest.raises(SpecErrors) as raised:
        build.compile_all(root, memo=memo)
    assert memo.specs.loads == 1
    assert [str(e) for e in raised.value.errors] == [
        "slos/s.yaml:2:10: service: service 'myservice' is also defined in slos/n.yaml:2:10; "
        "each service compiles to its own rules file"
    ]  # s.yaml, kept, is judged beside the file that changed


def test_kept_checks_follow_the_compatibility_and_alert_windows_they_read(project):
    weekly = SLOTH_EXAMPLE.replace("objective: 99.9", "objective: 99.9\n    period: 7d")
    root = project({"w.yaml": weekly, "r.yaml": RAW_SLI})
    kept_build(root)
    (root / "modelmon.toml").write_text('compatibility = "sloth"\n' + (root / "modelmon.toml").read_text())
    toml = kept_build(root)
    assert (toml.specs.loads, toml.specs.checked) == (0, 2)  # loaded as they were, checked anew
    assert "sloth_slo_info" in straightforward(root)["rules/myservice.yml"]
    (root / "slos" / "7d.yaml").write_text(SEVEN_DAYS)
    windows = kept_build(root)
    assert (windows.specs.loads, windows.specs.checked) == (1, 2)
    assert "slo:sli_error:ratio_rate3d" in straightforward(root)["rules/myservice.yml"]
    seven = root / "slos" / "7d.yaml"
    seven.write_text(SEVEN_DAYS.replace("longWindow: 3d", "longWindow: 2d"))
    moved = kept_build(root)
    assert (moved.specs.loads, moved.specs.checked) == (1, 2)
    assert "slo:sli_error:ratio_rate2d" in straightforward(root)["rules/myservice.yml"]


def test_a_damaged_or_foreign_kept_spec_is_loaded_again_and_never_run(project, tmp_path):
    """A kept entry is a pickle: one that is not what a build wrote (damaged, or made to run code
    when read) is loaded from the spec again; nothing in it runs."""
    root = project(SPECS)
    kept_build(root)
    entries = sorted((root / cache.SPECS_DIR).glob("*.pickle"))
    marker = tmp_path / "ran"

    class Runs:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    entries[0].write_bytes(entries[0].read_bytes()[:100])
    entries[1].write_bytes(pickle.dumps({"source": None, "loaded": Runs(), "checked": {}}))
    entries[2].write_bytes(pickle.dumps(Runs()))
    again = kept_build(root)
    assert again.specs.loads == 3
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match=re.escape("builtins.exec is not one of modelmon's data types")):
        cache._OwnTypes(io.BytesIO(pickle.dumps(Runs()))).load()
    with pytest.raises(pickle.UnpicklingError, match=re.escape("modelmon.cache.os.system")):
        cache._OwnTypes(io.BytesIO(b"\x80\x04\x8c\x0emodelmon.cache\x8c\tos.system\x93.")).load()


def test_a_kept_spec_of_modelmons_types_in_another_shape_is_made_again_not_crashed_on(project):
    root = project(SPECS)
    kept_build(root)
    entries = sorted((root / cache.SPECS_DIR).glob("*.pickle"))
    entry = pickle.loads(entries[0].read_bytes())
    [(slot, (own, texts))] = entry["checked"].items()
    entries[0].write_bytes(pickle.dumps({**entry, "loaded": ([own], [])}))  # a document that is not one
    entry = pickle.loads(entries[1].read_bytes())
    [(slot, (own, texts))] = entry["checked"].items()
    entries[1].write_bytes(pickle.dumps({**entry, "checked": {slot: (own, [*texts, "one text too many"])}}))
    entry = pickle.loads(entries[2].read_bytes())
    entries[2].write_bytes(pickle.dumps({**entry, "checked": {slot: ("not the checks", None)}}))
    again = kept_build(root)
    assert again.specs.loads == 3


def test_the_documents_of_one_file_are_kept_and_checked_each(project):
    two = SLOTH_EXAMPLE + "---\n" + RAW_SLI.lstrip()
    weekly = SLOTH_EXAMPLE.replace("myservice", "weekly").replace("objective: 99.9", "objective: 99.9\n    period: 7d")
    root = project({"two.yaml": two, "windows.yaml": SEVEN_DAYS + "---\n" + weekly})
    first = kept_build(root)
    assert (first.specs.loads, first.specs.checked) == (2, 3)
    again = kept_build(root)
    assert (again.specs.loads, again.specs.checked) == (0, 0)
    spec = root / "slos" / "two.yaml"
    spec.write_text(two.replace("objective: 99\n", "objective: 98\n", 1))  # the second document's
    changed = kept_build(root)
    assert (changed.specs.loads, changed.specs.checked, changed.missed) == (1, 2, 1)
    assert "slo:sli_error:ratio_rate3d" in straightforward(root)["rules/weekly.yml"]


def test_validate_reads_the_kept_specs_and_writes_none(project, capsys):
    root = project(SPECS)
    kept_build(root)
    spec = root / "slos" / "r.yaml"
    spec.write_text(spec.read_text().replace("objective: 99", "objective: 98", 1))
    before = sorted((root / cache.SPECS_DIR).iterdir())
    memo = cache.TestGroups(root, store=False)  # as validate makes it
    build.compile_all(root, memo=memo)
    memo.prune()
    assert memo.specs.loads == 1
    assert cli.main(["--root", str(root), "validate"]) == 0
    assert sorted((root / cache.SPECS_DIR).iterdir()) == before
    capsys.readouterr()


def test_nothing_is_written_outside_the_project_whatever_a_plan_names(project, tmp_path):
    root = project(SPECS)
    compiled = build.compile_all(root)
    compiled = dataclasses.replace(compiled, files=build.Outputs({**compiled.files, "../outside.yml": "groups: []\n"}))
    with pytest.raises(RuntimeError, match="refusing to write outside the project"):
        build.write_all(root, compiled)
    assert not (root.parent / "outside.yml").exists()
    assert not (root / "rules").exists()


def waited_for(marker: Path) -> None:
    for _ in range(2000):  # 20 s at most
        if marker.exists():
            return
        select.select([], [], [], 0.01)
    raise AssertionError(f"{marker.name} never came: the cache kept and the outputs written one after the other")


def test_a_build_keeps_its_cache_in_a_process_of_its_own_while_it_writes_the_outputs(models_project, monkeypatch):
    """prune() (the service texts and specs kept, 0.6 s at 1,000 SLOs) runs beside write_all, and
    the build returns once it is done. Each side waits for the other to have started: done one
    after the other, in either order, the first would wait for ever (20 s, then fail)."""
    writing, pruning, kept = (models_project / name for name in ("writing", "pruning", "kept"))
    prune, write_all = cache.TestGroups.prune, build.write_all

    def prune_once_writing(self):
        pruning.touch()
        waited_for(writing)
        prune(self)
        kept.touch()

    def write_all_once_pruning(*args, **kwargs):
        writing.touch()
        waited_for(pruning)
        return write_all(*args, **kwargs)

    monkeypatch.setattr(cache.TestGroups, "prune", prune_once_writing)
    monkeypatch.setattr(build, "write_all", write_all_once_pruning)
    assert cli.main(["--root", str(models_project), "build", "--no-cache"]) == 0
    assert kept.exists()  # waited for
    memo = cache.TestGroups(models_project)
    assert build.compile_all(models_project, memo=memo).files == straightforward(models_project)
    assert memo.missed == 0  # every group kept
    assert set(memo.services._made) == set(), "every service text was kept: none made again"


def test_where_no_process_can_be_forked_the_cache_is_kept_first(models_project, monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert cli.main(["--root", str(models_project), "build", "--no-cache"]) == 0
    memo = cache.TestGroups(models_project)
    assert build.compile_all(models_project, memo=memo).files == straightforward(models_project)
    assert memo.missed == 0 and set(memo.services._made) == set()


def test_a_cache_keeping_process_that_raises_fails_the_build_once_its_outputs_are_written(models_project, capfd):
    """A bug in keeping the cache is said (its traceback, then the build's error), never lost in
    the forked process; the outputs are written all the same."""
    rules = models_project / "rules"
    for path in rules.iterdir():
        path.unlink()

    def broken(self):
        raise ValueError("a bug in prune")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache.TestGroups, "prune", broken)
        with pytest.raises(RuntimeError, match=r"keeping the build's cache in \.modelmon/ failed"):
            cli.main(["--root", str(models_project), "build", "--no-cache"])
    assert "ValueError: a bug in prune" in capfd.readouterr().err
    assert sorted(rules.iterdir()) and cli.main(["--root", str(models_project), "build", "--check"]) == 0


def test_a_cache_keeping_process_killed_on_the_way_is_no_error_and_the_next_build_makes_what_it_kept_not(
    models_project, monkeypatch
):
    """Out of memory, or Ctrl-C: the build's outputs are written, each entry is whole or absent."""
    prune = cache.TestGroups.prune

    def killed_halfway(self):
        self.services._made = dict(list(self.services._made.items())[:2])  # two kept, then killed
        prune(self)
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(cache.TestGroups, "prune", killed_halfway)
    assert cli.main(["--root", str(models_project), "build", "--no-cache"]) == 0
    monkeypatch.setattr(cache.TestGroups, "prune", prune)
    memo = cache.TestGroups(models_project)
    assert build.compile_all(models_project, memo=memo).files == straightforward(models_project)
    assert memo.missed == 0 and len(memo.services._made) > 0  # the texts not kept are made again
    assert cli.main(["--root", str(models_project), "build", "--check"]) == 0


@pytest.mark.parametrize("raising", [False, True])
def test_the_cache_keeping_process_writes_nothing_the_build_had_buffered(tmp_path, raising):
    """Forked with its output buffered (a pipe), the child would write it a second time: on exit,
    or with its traceback (stderr's half line before it)."""
    script = (
        "import sys; from pathlib import Path; from modelmon import cache\n"
        f"memo = cache.TestGroups(Path({str(tmp_path)!r})); print('said once'); sys.stderr.write('and this')\n"
        f"if {raising}: cache.TestGroups.prune = lambda self: 1 / 0\n"
        "try:\n"
        "    with memo.pruned_meanwhile(): print('meanwhile')\n"
        "except RuntimeError as err: print(err)"
    )
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # (CI sets it)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=buffered)
    failed = "keeping the build's cache in .modelmon/ failed (above)\n" if raising else ""
    assert done.stdout == f"said once\nmeanwhile\n{failed}"
    assert done.stderr.count("and this") == 1 and done.stderr.startswith("and this")
    assert ("ZeroDivisionError" in done.stderr) is raising


def test_an_entry_is_kept_whole_in_folders_made_for_it_and_a_prune_leaves_a_scratch_file_till_abandoned(tmp_path):
    """The first entry of a project makes .modelmon/ (ignoring itself) and its folder; a scratch
    file another build is writing beside (its process's name) is not an entry a prune forgets,
    till it is an hour old (a killed build's)."""
    groups = tmp_path / cache.TEST_GROUPS_DIR
    cache._keep_file(groups, f"a{cache.ENTRY_SUFFIX}", b"kept")
    assert (tmp_path / ".modelmon" / ".gitignore").read_text().endswith("\n*\n")
    assert [p.name for p in groups.iterdir()] == [f"a{cache.ENTRY_SUFFIX}"]  # no scratch file left
    assert (groups / f"a{cache.ENTRY_SUFFIX}").read_bytes() == b"kept"
    cache._keep_file(groups, f"a{cache.ENTRY_SUFFIX}", b"again")  # replaced, by one rename
    assert (groups / f"a{cache.ENTRY_SUFFIX}").read_bytes() == b"again"
    others = groups / f"b{cache.ENTRY_SUFFIX}.{os.getpid() + 1}.0.tmp"
    others.write_bytes(b"half an entry")
    (groups / f"c{cache.ENTRY_SUFFIX}").write_bytes(b"unused")
    # A killed build's, an hour old and more (an earlier version's name, and this one's).
    for abandoned in ("tmpq1w2e3r4.tmp", f"d{cache.ENTRY_SUFFIX}.1.7.tmp"):
        (groups / abandoned).write_bytes(b"half")
        old = os.stat(groups / abandoned).st_mtime - cache.ABANDONED_AFTER_S - 1
        os.utime(groups / abandoned, (old, old))
    cache._forget_unused(groups, cache._Kept.SUFFIXES, {"a"})
    assert sorted(p.name for p in groups.iterdir()) == sorted([f"a{cache.ENTRY_SUFFIX}", others.name])
    # A scratch name a process of the same id left: another name, the entry kept all the same.
    pid, n = os.getpid(), next(cache._scratch_names) + 1
    (groups / f"e{cache.ENTRY_SUFFIX}.{pid}.{n}.tmp").write_bytes(b"left")
    cache._keep_file(groups, f"e{cache.ENTRY_SUFFIX}", b"kept")
    assert (groups / f"e{cache.ENTRY_SUFFIX}").read_bytes() == b"kept"
