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

from pydantic.alias_generators import to_camel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from modelmon import specmodel
from modelmon.formats import openslo, sloth
from modelmon.loader import LoadedSpec, SpecError, SpecErrors, load_file

VERSION = "modelmon/v1"


def to_modelmon(path: Path, display: str) -> str:
    """`path` as modelmon/v1 YAML; SpecErrors when modelmon does not compile it as it is."""
    loaded, errors = load_file(path, display)
    if errors:
        raise SpecErrors(errors)
    text = path.read_text(encoding="utf-8")
    documents = [d for d in _yaml().load_all(text) if d is not None]
    forms = [_form(d) for d in documents]
    if "openslo" in forms:
        if set(forms) != {"openslo"}:
            raise SpecErrors([SpecError(display, 1, 1, "", "the file mixes OpenSLO with Sloth documents: import each")])
        specs = [item for item in loaded if isinstance(item, LoadedSpec)]
        return _leading_comments(text) + _dump([_plain(item) for item in specs])
    return _dump([_converted(d, form) for d, form in zip(documents, forms, strict=True)])


def _yaml() -> YAML:
    found = YAML(typ="rt")
    found.preserve_quotes = True
    found.width = 4096  # queries stay on their line
    found.indent(mapping=2, sequence=4, offset=2)
    return found


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
        return document
    if form != "resource":
        return document
    spec = document["spec"]
    converted = CommentedMap()
    converted["version"] = VERSION
    _respell(spec, specmodel.annotation_at(()), converted)
    # The resource's header comments (before apiVersion) head the spec.
    if document.ca.comment:
        converted.ca.comment = document.ca.comment
    return converted


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
