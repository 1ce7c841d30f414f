"""The promtool test groups a build keeps (.modelmon/test-groups): outputs byte for byte those of
the straightforward path (every group generated, each file dumped whole), and only the SLOs
whose plan changed generated again."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from modelmon import build, cache, cli
from tests.test_backfill import RAW_SLI
from tests.test_sloth import SLOTH_EXAMPLE
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
    entries[0].write_text("{not json")
    record = json.loads(entries[1].read_text())
    entries[1].write_text(json.dumps({**record, "plan": "another plan", "groups": [[60, "- name: forged\n"]]}))
    memo = cache.TestGroups(root)
    assert build.compile_all(root, memo=memo).files == straightforward(root)
    assert memo.missed == 2


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
