"""`modelmon import`: a Sloth or OpenSLO file written as modelmon/v1, comments kept, compiling to
the same rules as the file it came from (every Sloth example modelmon compiles, read from the
pinned Sloth module)."""

from __future__ import annotations

import re

import pytest
import yaml

from modelmon import build, cli
from tests.test_sloth_examples import COMPILES, OUTCOMES, WINDOWS
from tools import build as tools

COMPILING = sorted(name for name, outcome in OUTCOMES.items() if outcome is COMPILES)


def rules(root) -> dict[str, str]:
    """Each rule file without its header (which names the spec it came from)."""
    files = build.compile_all(root).files
    return {path: text.split("\n", 1)[1] for path, text in files.items() if path.startswith("rules/")}


@pytest.mark.parametrize("name", COMPILING)
def test_an_imported_spec_compiles_to_the_rules_of_the_file_it_came_from(name, tmp_path, capsys):
    source = tools.source("sloth") / name
    original = new_project(tmp_path / "original", source.read_text())
    assert cli.main(["import", str(source)]) == 0
    imported = capsys.readouterr().out
    documents = [d for d in yaml.safe_load_all(imported) if d]
    assert documents and all(d.get("version") == "modelmon/v1" for d in documents), imported
    converted = new_project(tmp_path / "converted", imported)
    # An info series (info_labels/v1) says the form its spec is written in, as Sloth's does.
    respelled = {path: re.sub(r"sloth_spec: \S+", "sloth_spec: modelmon/v1", t) for path, t in rules(original).items()}
    assert rules(converted) == respelled
    assert (original / "slos" / "x.yaml").read_text() != imported
    text = source.read_text()
    if "openslo" not in text:
        # Every comment of a Sloth file stays (OpenSLO keeps those above its first document).
        comments = [line.strip() for line in text.splitlines() if line.strip().startswith("#")]
        assert all(comment in imported for comment in comments), [c for c in comments if c not in imported]
    if "PrometheusServiceLevel" in text:
        camel = {k for d in documents for k in _keys(d) if re.search(r"[a-z][A-Z]", k)}
        assert camel <= _label_names(documents), camel


def _keys(node) -> list[str]:
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in (k, *_keys(v))]
    if isinstance(node, list):
        return [k for v in node for k in _keys(v)]
    return []


def _label_names(documents) -> set[str]:
    """Keys of label and annotation maps: written as they are."""
    found = set()
    for document in documents:
        for slo in document["slos"]:
            alerting = slo.get("alerting") or {}
            for block in (alerting, *(alerting.get(k) or {} for k in ("page_alert", "ticket_alert"))):
                found |= set(block.get("labels") or {}) | set(block.get("annotations") or {})
            found |= set(slo.get("labels") or {})
        found |= set(document.get("labels") or {})
    return found


def test_alert_windows_are_written_as_they_are(capsys):
    [name] = [n for n, outcome in OUTCOMES.items() if outcome is WINDOWS and n.startswith("examples/windows/7d")]
    assert cli.main(["import", str(tools.source("sloth") / name)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load((tools.source("sloth") / name).read_text())


def test_a_file_modelmon_refuses_is_not_imported_and_nothing_is_written(tmp_path, capsys):
    source = tmp_path / "bad.yaml"
    source.write_text("version: prometheus/v1\nservice: svc\nslos:\n  - name: a\n    objective: 120\n")
    out = tmp_path / "out.yaml"
    assert cli.main(["import", str(source), "-o", str(out)]) == cli.EXIT_SPEC
    assert f"{source}:5:16: slos[0].objective:" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_a_file_is_imported_in_place(tmp_path, capsys):
    source = tmp_path / "svc.yaml"
    source.write_text((tools.source("sloth") / "examples" / "k8s-home-wifi.yml").read_text())
    before = rules_of_file(source, tmp_path / "a")
    assert cli.main(["import", str(source), "-o", str(source)]) == 0
    assert capsys.readouterr().out == f"wrote {source}\n"
    assert yaml.safe_load(source.read_text())["version"] == "modelmon/v1"
    assert rules_of_file(source, tmp_path / "b") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "svc.yaml"]  # no temporary file left


def new_project(root, spec: str, config: str = ""):
    """A project in a folder of its own (the `project` fixture makes one folder per test)."""
    (root / "slos").mkdir(parents=True)
    (root / "slos" / "x.yaml").write_text(spec)
    if config:
        (root / "modelmon.toml").write_text(config)
    return root


def rules_of_file(spec, root) -> dict[str, str]:
    (root / "slos").mkdir(parents=True)
    (root / "slos" / "x.yaml").write_text(spec.read_text())
    return rules(root)


def test_a_file_modelmon_does_not_compile_is_refused_with_the_builds_errors(tmp_path, capsys):
    """A file that loads, with a query promtool refuses in the rules it compiles to."""
    out = tmp_path / "out.yaml"
    source = tmp_path / "sloth.yaml"
    text = (tools.source("sloth") / "examples" / "getting-started.yml").read_text()
    source.write_text(text.replace("[{{.window}}]))", "[{{.window}}])", 1))
    assert cli.main(["import", str(source), "-o", str(out)]) == cli.EXIT_SPEC
    assert "slos[0].sli: promtool rejects the generated rule slo:sli_error_events:rate5m" in capsys.readouterr().err
    assert not out.exists()


def test_text_yaml_1_1_reads_as_a_boolean_or_a_number_is_quoted(tmp_path, capsys):
    source = tmp_path / "openslo.yml"
    text = (tools.source("sloth") / "examples" / "openslo-getting-started.yml").read_text()
    source.write_text(re.sub(r"description: .*", 'description: "yes"', text, count=1))
    assert cli.main(["import", str(source)]) == 0
    imported = capsys.readouterr().out
    assert 'description: "yes"' in imported
    root = new_project(tmp_path / "converted", imported)
    [plan] = build.compile_all(root).plans["my-service"]
    assert plan.description == "yes"


def test_the_comments_around_what_a_resource_drops_head_the_spec(tmp_path, capsys):
    text = (tools.source("sloth") / "examples" / "k8s-getting-started.yml").read_text()
    text = text.replace("kind: PrometheusServiceLevel", "kind: PrometheusServiceLevel # the CRD")
    text = text.replace("spec:\n", "# above spec\nspec:\n  # first in spec\n", 1)
    source = tmp_path / "k8s.yml"
    source.write_text(text)
    assert cli.main(["import", str(source)]) == 0
    imported = capsys.readouterr().out
    head = imported.split("version: modelmon/v1", 1)[0]
    for comment in (
        "# the CRD",
        "# above spec",
        "# first in spec",
        "# `sloth generate -i ./examples/k8s-getting-started.yml`",
    ):
        assert comment in head, imported


def test_the_target_folder_is_made_a_folder_target_refused_and_the_mode_kept(tmp_path, capsys):
    source = tools.source("sloth") / "examples" / "getting-started.yml"
    deep = tmp_path / "new" / "folder" / "x.yaml"
    assert cli.main(["import", str(source), "-o", str(deep)]) == 0
    assert deep.is_file()
    assert cli.main(["import", str(source), "-o", str(tmp_path)]) == cli.EXIT_USAGE
    assert "is a folder" in capsys.readouterr().err
    deep.chmod(0o640)
    assert cli.main(["import", str(source), "-o", str(deep)]) == 0
    assert deep.stat().st_mode & 0o777 == 0o640


def test_with_sloths_names_only_the_info_series_spec_label_says_the_new_form(tmp_path, capsys):
    """sloth_slo_info's sloth_spec names the form a file is written in: modelmon/v1 once imported."""
    source = tools.source("sloth") / "examples" / "k8s-getting-started.yml"
    names = 'compatibility = "sloth"\n'
    original = new_project(tmp_path / "original", source.read_text(), names)
    assert cli.main(["import", str(source)]) == 0
    converted = new_project(tmp_path / "converted", capsys.readouterr().out, names)
    before, after = rules(original), rules(converted)
    assert "sloth_spec: sloth.slok.dev/v1" in before["rules/myservice.yml"]
    renamed = {p: t.replace("sloth_spec: sloth.slok.dev/v1", "sloth_spec: modelmon/v1") for p, t in before.items()}
    assert renamed == after


def test_label_values_yaml_1_1_reads_otherwise_keep_the_text_they_compiled_to(tmp_path, capsys):
    """`on` and `1:30` are a boolean and a number for modelmon's YAML 1.1 (labels `true`, `90`, as
    Sloth makes them) and text for ruamel's 1.2: the import writes what they compiled to."""
    text = (tools.source("sloth") / "examples" / "getting-started.yml").read_text()
    text = text.replace('  tier: "2"\n', '  tier: "2"\n  a: 1:30\n  b: on\n  c: 0.20\n  d: 2020-01-01\n')
    source = tmp_path / "s.yml"
    source.write_text(text)
    assert cli.main(["import", str(source)]) == 0
    imported = capsys.readouterr().out
    before = rules(new_project(tmp_path / "original", text))
    assert 'b: "true"' in imported and "b: 'true'" in before["rules/myservice.yml"]
    assert rules(new_project(tmp_path / "converted", imported)) == before
