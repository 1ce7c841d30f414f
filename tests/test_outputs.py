"""The shape every output shares: the project's plan in, files out (modelmon/outputs/)."""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon import build, serialize
from modelmon.layout import Layout
from modelmon.plan import ProjectPlan
from tests.project_files import EVERY_FORM

REPO = Path(__file__).resolve().parent.parent
OUTPUTS_DIR = REPO / "modelmon" / "outputs"


def test_every_output_module_is_in_the_build_loop_with_the_same_signature():
    modules = {p.stem for p in OUTPUTS_DIR.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in OUTPUTS_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert {m.__name__.rsplit(".", 1)[1] for m in build.OUTPUTS} == modules
    for module in build.OUTPUTS:
        parameters = list(inspect.signature(module.files).parameters.values())
        assert [p.name for p in parameters[:2]] == ["project", "layout"], module.__name__
        # Anything more is optional (the test groups earlier builds kept): plan and layout make the files.
        assert all(p.default is not inspect.Parameter.empty for p in parameters[2:]), module.__name__


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_outputs_read_the_plan_never_the_spec_files_behind_it():
    """Loaded specs and the checks stay behind the plan; only the field reference documents spec.py,
    and the Alertmanager config types the receivers the plan carries as stated."""
    for path in sorted(OUTPUTS_DIR.rglob("*.py")):
        imports = _imports(path)
        assert not {"modelmon.loader", "modelmon.checks", "modelmon.build"} & imports, path
        if path.stem not in ("reference", "alertmanager"):
            assert not any(i == "modelmon.spec" or i.startswith("modelmon.spec.") for i in imports), path


def test_a_new_output_is_one_module_in_the_loop(project, monkeypatch):
    """A module with files(project, layout) added to OUTPUTS is compiled and written like the others."""
    seen: list[ProjectPlan] = []

    def files(project: ProjectPlan, layout: Layout) -> dict[str, str]:
        seen.append(project)
        return {f"extra/{s.service}.txt": f"{len(s.slos)} SLOs\n" for s in project.services}

    extra = types.ModuleType("modelmon.outputs.extra")
    extra.files = files
    monkeypatch.setattr(build, "OUTPUTS", (*build.OUTPUTS, extra))
    root = project({"models.yaml": (REPO / "slos" / "models.yaml").read_text()})

    compiled = build.compile_all(root)
    build.write_all(root, compiled)

    assert (root / "extra" / "models-monitoring.txt").read_text() == "3 SLOs\n"
    assert [s.service for s in seen[0].services] == ["models-monitoring"]
    assert seen[0] is compiled.project  # planned once: the outputs share one plan


def test_the_plan_is_computed_once_per_build(project, monkeypatch):
    from modelmon import checks, plan

    calls = []
    original = plan.plan_service

    def counted(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(plan, "plan_service", counted)
    monkeypatch.setattr(checks, "plan_service", counted)
    root = project({"models.yaml": (REPO / "slos" / "models.yaml").read_text()})
    build.compile_all(root)
    assert calls == ["slos/models.yaml"]


def test_plan_classes_do_not_share_names_with_spec_classes():
    from modelmon import plan, spec

    def classes(module) -> set[str]:
        return {n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == module.__name__}

    assert classes(plan) and classes(spec)
    assert classes(plan) & classes(spec) == set()


# Text libyaml spells its own way (yaml/libyaml#279 escapes emoji; NEL, LS and PS are YAML 1.1
# line breaks): in an annotation, a description and a runbook, as people write them.
UNUSUAL_TEXT = EVERY_FORM.replace(
    "    alerting:\n      name: CheckoutErrors",
    "    description: 'Checkout 🔥 errors\u2028next line\x85end'\n"
    "    alerting:\n      name: CheckoutErrors\n"
    "      page_alert: {annotations: {summary: '🔥 {{ $labels.route }} is failing'}}",
)


@pytest.mark.parametrize("specs", ["shipped", "every SLI form", "unusual text"])
def test_libyaml_and_pure_python_pyyaml_write_the_same_outputs(specs, tmp_path, monkeypatch):
    """The outputs are dumped with libyaml's emitter (fast) when PyYAML has it; a PyYAML
    without it must not make committed outputs look stale."""
    assert hasattr(yaml, "CSafeDumper"), "PyYAML without libyaml: this test would compare the pure emitter with itself"
    root = REPO
    if specs != "shipped":
        root = tmp_path
        (root / "slos").mkdir()
        text = EVERY_FORM if specs == "every SLI form" else UNUSUAL_TEXT
        (root / "slos" / "checkout.yaml").write_text(text.lstrip(), encoding="utf-8")
    fast = build.compile_all(root).files
    if specs == "unusual text":
        assert "🔥" in fast["rules/checkout.yml"]
    monkeypatch.setattr(serialize, "_Dumper", serialize.PURE_PYTHON_DUMPER)
    serialize.forget_scalars()  # else the scalars libyaml spelt above would be written again
    try:
        assert build.compile_all(root).files == fast
    finally:
        serialize.forget_scalars()


# Keys as the outputs have them: label and field names, or Prometheus 3's UTF-8 label names
# (printable, at most 120 characters).
_KEY = (
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
    | st.text(st.characters(codec="utf-8").filter(str.isprintable), max_size=120)
    | st.text(st.sampled_from("日é🚀a"), min_size=30, max_size=50)  # over 128 bytes, under 128 characters
)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.text(
    st.sampled_from(list("ab \n\t:#-'\"\x85é😀\u2028|>")), max_size=12
)
_DATA = st.dictionaries(
    _KEY,
    st.recursive(
        _TEXT | st.integers() | st.booleans() | st.floats(allow_nan=False) | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEY, inner, max_size=4),
        max_leaves=20,
    ),
    min_size=1,
)


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(_DATA)
def test_dump_yaml_writes_what_the_pure_python_emitter_writes_for_any_mapping(data):
    """Mappings as the outputs are (string keys), with any text: 151 of 5,000 such documents
    differed before the documents libyaml spells its own way went to the pure emitter. dump_yaml
    lays out the blocks itself (its scalars spelt by PyYAML): the same text, any nesting."""
    pure = yaml.dump(data, Dumper=serialize.PURE_PYTHON_DUMPER, sort_keys=False, width=100_000, allow_unicode=True)
    assert serialize.dump_yaml(data) == pure
    # A list of them, as the promtool test groups are dumped, one by one.
    assert serialize.dump_yaml([data, data]) == yaml.dump(
        [data, data], Dumper=serialize.PURE_PYTHON_DUMPER, sort_keys=False, width=100_000, allow_unicode=True
    )


# Printable ASCII as the outputs hold it (annotations, series, selectors), and the characters
# the emitter's choice of plain or quoted turns on.
_ASCII = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
    | st.text(st.sampled_from(list("ab1 :#-?'\",[]{}&*!|>%@`.~<=+eEyYnNtT0x_")), min_size=1, max_size=8)
    | st.lists(
        st.sampled_from(["a", " ", "#", ":", "-", "?", "'", "no", "1", ".5", "e+3", "---", "{x}", "http://h/"]),
        min_size=1,
        max_size=6,
    ).map("".join)
)


@settings(max_examples=3000, deadline=None, database=None, derandomize=True)
@given(_ASCII)
def test_printable_ascii_strings_are_spelt_as_pyyaml_spells_them(text):
    """The one-line strings spelt without dumping a document (serialize._printable_ascii_text)
    are spelt as both of PyYAML's emitters write them after `k: `, with YAML's words (`no`,
    `null`, `1.5e+3`, `.inf`, `2001-12-14`), indicators and comment marks among them."""
    quick = serialize._printable_ascii_text(text)
    assert quick is not None
    for dumper in {serialize.PURE_PYTHON_DUMPER, serialize._Dumper}:
        dumped = yaml.dump({"k": text}, Dumper=dumper, sort_keys=False, width=100_000, allow_unicode=True)
        assert f"k: {quick}\n" == dumped, dumper


@pytest.mark.parametrize(
    "text",
    ["no", "Yes", "null", "~", "1.5e+3", "1_000", ".inf", "0x1F", "2001-12-14", "<<", "=", "- a", "a: b", "a #b", "a:"],
)
def test_yaml_words_and_indicators_are_quoted(text):
    assert serialize._printable_ascii_text(text) == f"'{text}'"
    assert yaml.safe_load(f"k: {serialize._printable_ascii_text(text)}") == {"k": text}


def test_strings_the_quick_spelling_leaves_to_pyyaml():
    assert serialize._printable_ascii_text("") is None
    assert serialize._printable_ascii_text("é") is None
    assert serialize._printable_ascii_text("a\tb") is None
    assert serialize._printable_ascii_text("a" * 1001) is None
