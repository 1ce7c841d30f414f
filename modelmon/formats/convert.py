"""A Sloth or OpenSLO file written as modelmon's own `modelmon/v1` (`modelmon import`).

The file is validated first, as a build reads it: only a file modelmon compiles is written
again, and the result compiles to the same rules (tests/test_import.py proves it for every
Sloth example modelmon compiles). Comments stay where the form allows:

- `prometheus/v1` is modelmon/v1's subset: only the version changes, every comment stays;
- a PrometheusServiceLevel becomes its `spec`, each field respelled from Sloth's camelCase to
  modelmon's (`errorQuery` -> `error_query`), label names as written; comments stay with
  their fields, the resource's own header comments on top (`metadata` is dropped);
- AlertWindows are written as they are: modelmon reads them as Sloth does;
- OpenSLO documents are written as the modelmon spec they compile to (one per service),
  under the file's leading comments: their fields have no one-to-one counterpart to keep
  comments on.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic.alias_generators import to_camel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tokens import CommentToken

from modelmon import build, specmodel
from modelmon.checks import check_all
from modelmon.formats import openslo, sloth
from modelmon.layout import Layout
from modelmon.loader import LoadedSpec, LoadedWindows, SpecError, SpecErrors, load_file, sloth_text

VERSION = "modelmon/v1"


def to_modelmon(path: Path, display: str) -> str:
    """`path` as modelmon/v1 YAML; SpecErrors when modelmon does not compile it as it is."""
    loaded = compiled(path, display)
    text = path.read_text(encoding="utf-8")
    documents = [d for d in _yaml().load_all(text) if d is not None]
    forms = [_form(d) for d in documents]
    if "openslo" in forms:
        if set(forms) != {"openslo"}:
            raise SpecErrors([SpecError(display, 1, 1, "", "the file mixes OpenSLO with Sloth documents: import each")])
        specs = [item for item in loaded if isinstance(item, LoadedSpec)]
        return _leading_comments(text) + _dump([_plain(item) for item in specs])
    return _dump([_converted(d, form) for d, form in zip(documents, forms, strict=True)])


def compiled(path: Path, display: str) -> list:
    """The file's documents, checked as a build checks them (the project's checks and promtool's):
    SpecErrors naming every problem, file:line:col."""
    loaded, errors = load_file(path, display)
    specs = [item for item in loaded if isinstance(item, LoadedSpec)]
    windows = [item for item in loaded if isinstance(item, LoadedWindows)]
    if not errors and specs:
        problems, project, specs = check_all(specs, windows)
        errors = problems or build.refused_outputs(specs, project, Layout())[0]
    if errors:
        raise SpecErrors(errors)
    return loaded


def _yaml() -> YAML:
    found = YAML(typ="rt")
    found.preserve_quotes = True
    found.width = 4096  # queries stay on their line
    found.indent(mapping=2, sequence=4, offset=2)
    found.representer.add_representer(str, _str)
    return found


_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


def _tag(value: str) -> str:
    """What YAML 1.1 (modelmon's reader) takes the plain scalar `value` for."""
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))


def _str(representer, value: str):
    """A string modelmon's YAML 1.1 reader would take for something else (`yes`, `on`, `1:30`) is
    quoted: ruamel writes YAML 1.2, where those are plain text."""
    style = '"' if _tag(value) != _STR else None
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _form(document: object) -> str:
    if not isinstance(document, dict):
        return "other"
    if document.get("apiVersion") in openslo.API_VERSIONS:
        return "openslo"
    if document.get("apiVersion") == sloth.API_VERSION and document.get("kind") == sloth.SERVICE_LEVEL:
        return "resource"
    if "version" in document:
        return "spec"
    return "other"  # AlertWindows: read by modelmon as they are


def _converted(document: CommentedMap, form: str) -> CommentedMap:
    if form == "spec":
        document["version"] = VERSION
        _as_read(document, specmodel.annotation_at(()))
        return document
    if form != "resource":
        return document
    spec = document["spec"]
    converted = CommentedMap()
    converted["version"] = VERSION
    _respell(spec, specmodel.annotation_at(()), converted)
    _as_read(converted, specmodel.annotation_at(()))
    # The comments of what is dropped (apiVersion, kind, metadata: the header, those beside them
    # and the one above `spec:`) and the first of the spec head the converted spec, in file order.
    dropped = [document.ca.comment, *(document.ca.items.get(k) for k in document), spec.ca.comment]
    dropped += [value for key, value in document.items() if key != "spec"]
    lines = sorted({(t.start_mark.line, t.value) for t in _tokens(dropped)})
    text = "".join(value for _, value in lines)
    header = [line[2:] if line.startswith("# ") else line[1:] for line in text.splitlines() if line.startswith("#")]
    if header:
        converted.yaml_set_start_comment("\n".join(header))
    return converted


def _as_read(node: object, annotation: object) -> None:
    """Label values written plain that YAML 1.1 reads as something else (`on`, `1:30`, `0.20`) as
    the text modelmon, like Sloth, made of them (`true`, `90`, `0.2`): ruamel reads YAML 1.2, where
    they are text as written, so written back quoted they would change the labels."""
    if isinstance(node, CommentedSeq):
        for value in node:
            _as_read(value, specmodel.child(annotation, 0))
    if not isinstance(node, CommentedMap):
        return
    text_map = specmodel.is_text_map(annotation)
    for key, value in node.items():
        if text_map and type(value) is str and _tag(value) != _STR:  # plain, not a quoted ScalarString
            node[key] = sloth_text(yaml.safe_load(value), value)
        else:
            _as_read(value, specmodel.child(annotation, key) if isinstance(key, str) else None)


def _tokens(node: object) -> list:
    """Every comment token in `node`: comment slots of ruamel's maps and lists, and their values."""
    if isinstance(node, CommentToken):
        return [node]
    found = []
    if isinstance(node, list | tuple):
        for item in node:
            found += _tokens(item)
    if isinstance(node, CommentedMap | CommentedSeq):
        found += _tokens(node.ca.comment) + _tokens(list(node.ca.items.values()))
        found += _tokens(list(node.values()) if isinstance(node, CommentedMap) else list(node))
    return found


def _respell(node: object, annotation: object, into: CommentedMap | None = None) -> object:
    """`node` with each field named as modelmon names it; maps of names (labels) keep their keys."""
    if isinstance(node, CommentedSeq):
        item = specmodel.child(annotation, 0)
        for i, value in enumerate(node):
            node[i] = _respell(value, item)
        return node
    if not isinstance(node, CommentedMap):
        return node
    names = specmodel.fields(annotation)
    spelled = {to_camel(name): name for name in names}
    out = CommentedMap() if into is None else into
    for key, value in node.items():  # merged keys (`<<: *x`) come out in full
        name = spelled.get(key, key) if names else key
        out[name] = _respell(value, specmodel.child(annotation, name) if isinstance(name, str) else None)
        if key in node.ca.items:
            out.ca.items[name] = node.ca.items[key]
    if node.ca.comment and into is None:
        out.ca.comment = node.ca.comment
    return out


def _plain(item: LoadedSpec) -> dict:
    """The spec modelmon compiled (what the file set, not the defaults), as YAML data."""
    data = item.spec.model_dump(mode="python", by_alias=True, exclude_unset=True)
    return {"version": VERSION, **{k: _number(v) for k, v in data.items() if k != "version"}}


def _number(value: object) -> object:
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def _dump(documents: list) -> str:
    out = io.StringIO()
    _yaml().dump_all(documents, out)
    return out.getvalue()
