"""Read `slos/*.yaml` into validated specs, or into errors that point at the YAML.

Every error names file, line, column and field path, e.g.
`slos/models.yaml:12:5: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)`.
All errors of a run are collected; nothing is compiled while any remain. A file
whose parts fail validation still yields the parts that pass (each top-level field,
each SLO), so the checks that span fields, SLOs and files judge those too.
"""

from __future__ import annotations

import difflib
import re
import struct
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from modelmon import specmodel
from modelmon.formats import openslo, sloth
from modelmon.limits import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    MAX_EXPANDED_CHARS,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    MAX_SLOS_PER_FILE,
    MAX_TEXT_CHARS,
    MAX_VALUES,
)
from modelmon.spec import Slo, SloFile
from modelmon.specmodel import FieldPath


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one spec file, with the position people need to fix it."""

    file: str
    line: int
    column: int
    path: str
    message: str
    # The same path as parts of the data, to tell which field or SLO the error breaks.
    loc: FieldPath = field(default=(), compare=False)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class SpecErrors(Exception):
    """Raised with every error of a run; the CLI prints them and exits 2."""

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def _as_written(key: str) -> str:
    return key


@dataclass
class Positions:
    """Line and column (1-based) of every key and value in one YAML document.

    A document in another tool's form is read under modelmon's field names: `shown` maps those
    paths back to where they stand in the file, and `spell` spells a field the file's way."""

    file: str
    values: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    shown: dict[FieldPath, FieldPath] = field(default_factory=dict)
    spell: Callable[[str], str] = _as_written
    # The model the document's data validates against (for suggestions and text maps).
    root: type[BaseModel] = SloFile

    def error(self, path: FieldPath, message: str, *, at_key: bool = False) -> SpecError:
        """An error at `path`, placed at the closest node the YAML really has."""
        line, column = self._locate(path, at_key)
        return SpecError(self.file, line, column, format_path(self.written(path)), message, path)

    def written(self, path: FieldPath) -> FieldPath:
        """`path` as the file spells it: fields the file does not write (a missing one) in its spelling too."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.shown:
                rest = tuple(self._spelt(path[: end + i], part) for i, part in enumerate(path[end:]))
                return (*self.shown[path[:end]], *rest)
        return path

    def _spelt(self, parent: FieldPath, part: str | int) -> str | int:
        if self.spell is _as_written or not isinstance(part, str):
            return part
        return self.spell(part) if part in specmodel.allowed_keys(parent, self.root) else part

    def _locate(self, path: FieldPath, at_key: bool) -> tuple[int, int]:
        if at_key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)


def format_path(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class LoadedSpec:
    """A spec file, whole when `broken` is empty, else the parts of it that validated."""

    path: Path
    display: str
    spec: SloFile
    positions: Positions
    # Top-level fields with errors: missing from `spec` or at their default, so nothing may judge them.
    broken: frozenset[str]
    # Where each of spec.slos stands in the file: SLOs with errors are left out of spec.slos.
    slo_indexes: tuple[int, ...]
    # Which of the file's specs it is (a file may hold several documents): what a build keeps of
    # its checks is kept by file and this.
    document: int = 0

    def slos(self) -> Iterator[tuple[int, Slo]]:
        """Each SLO that validated, with its index in the file."""
        return zip(self.slo_indexes, self.spec.slos, strict=True)


def broken_parts(errors: list[SpecError]) -> tuple[set[str], set[int]]:
    """The top-level fields and the SLOs (by index in the file) that `errors` are about."""
    fields = {str(e.loc[0]) for e in errors if e.loc}
    slos = {e.loc[1] for e in errors if len(e.loc) > 1 and e.loc[0] == "slos" and isinstance(e.loc[1], int)}
    return fields, slos


@dataclass(frozen=True)
class LoadedWindows:
    """A Sloth `AlertWindows` document: the burn-rate windows of the SLOs of one period."""

    display: str
    windows: sloth.AlertWindows
    positions: Positions


Loaded = LoadedSpec | LoadedWindows

# What each form of document is, for errors that list them.
_FORMS = (
    "`version: modelmon/v1` or `version: prometheus/v1` (Sloth), "
    f"`apiVersion: {sloth.API_VERSION}` with kind {' or '.join(sloth.KINDS)}, "
    f"or `apiVersion: {' or '.join(openslo.API_VERSIONS)}`"
)


_NOT_A_MAPPING = "the top level must be a mapping with version, service and slos"


def read_spec(path: Path) -> bytes:
    """A spec file's bytes, as far as the loader reads them: one byte past the limit tells it is over."""
    with path.open("rb") as stream:
        return stream.read(MAX_FILE_BYTES + 1)


def load_file(path: Path, display: str | None = None, raw: bytes | None = None) -> tuple[list[Loaded], list[SpecError]]:
    """Parse and validate one file: each of its documents (or the parts of one that validated), and every error.

    A document is left out when nothing in it can be judged (unreadable, not YAML, not a mapping).
    `raw`: the file's bytes (read_spec), when the caller has read them."""
    display = display or str(path)
    if not display.isprintable():  # control characters, and the line separators YAML reads too
        # Generated files name their specs in header comments: a line break there would end the comment.
        shown = display.encode("unicode_escape").decode("ascii")
        return [], [
            SpecError(shown, 1, 1, "", "the file name holds a control character or line break; rename the file")
        ]
    try:
        raw = read_spec(path) if raw is None else raw
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [], [SpecError(display, 1, 1, "", f"cannot read file: {err}")]
    if len(raw) > MAX_FILE_BYTES:
        message = f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; split its SLOs over several files"
        return [], [SpecError(display, 1, 1, "", message)]
    try:
        # The parser recurses once per level: too deep a file is refused before it is parsed.
        if deep := _too_deep(text, display):
            return [], [deep]
        # An empty document (a `---` with nothing after it) holds nothing, as for Sloth.
        documents = [node for node in composed(text) if not _empty(node)]
    except yaml.MarkedYAMLError as err:
        return [], [_syntax_error(err, text, display)]
    except yaml.reader.ReaderError as err:  # a control character: PyYAML gives only its offset
        line = text.count("\n", 0, err.position) + 1
        column = err.position - text.rfind("\n", 0, err.position)
        message = f"YAML syntax error: unacceptable character #x{err.character:04x}: {err.reason}"
        return [], [SpecError(display, line, column, "", message)]
    if not documents:
        return [], [
            SpecError(display, 1, 1, "", "the file is empty; expected a mapping with version, service and slos")
        ]
    if len(documents) > MAX_DOCUMENTS:
        mark = documents[MAX_DOCUMENTS].start_mark
        message = f"the file holds {len(documents)} YAML documents; at most {MAX_DOCUMENTS}: split it"
        return [], [SpecError(display, mark.line + 1, mark.column + 1, "", message)]
    try:
        # All documents together: the bounds are the file's.
        first = documents[0]
        _measure(yaml.SequenceNode("tag:yaml.org,2002:seq", documents, first.start_mark, first.end_mark), display)
    except _Exhausted as err:
        return [], [err.error]
    loaded: list[Loaded] = []
    errors: list[SpecError] = []
    slos: list[tuple[str, str, yaml.MappingNode]] = []  # OpenSLO documents, read together
    for node in documents:
        api = _top_scalar(node, "apiVersion") if isinstance(node, yaml.MappingNode) else None
        if api in openslo.API_VERSIONS:
            kind = _top_scalar(node, "kind")
            if kind not in openslo.KINDS[api]:
                message = f"kind {kind!r} of {api} is not read; modelmon reads {', '.join(openslo.KINDS[api])}"
                errors.append(_at_node(display, node, (), message))
            else:
                slos.append((api, kind, node))
            continue
        item, problems = _load_document(path, display, node)
        errors += problems
        if item is not None:
            loaded.append(item)
    services, problems = openslo.services(slos)
    errors += [_at_node(display, p.node, p.path, p.message) for p in problems]
    for service in services:
        item, problems = _spec_document(path, service.node(), Positions(display, shown=service.shown))
        errors += problems
        if item is not None:
            item.spec._form = service.api
            loaded.append(item)
    loaded = [replace(item, document=i) if isinstance(item, LoadedSpec) else item for i, item in enumerate(loaded)]
    slos = sum(len(item.spec.slos) for item in loaded if isinstance(item, LoadedSpec))
    if slos > MAX_SLOS_PER_FILE:  # each document holds at most as many: all of them together too
        message = f"the file's documents hold {slos:,} SLOs; at most {MAX_SLOS_PER_FILE:,} in one file: split it"
        errors.append(SpecError(display, 1, 1, "", message))
    return loaded, errors


# libyaml's parser, where PyYAML has it: ten times faster (a thousand SLOs' files took 0.4 s of
# PyYAML's, before anything else of a build could start). Only for text both parsers read alike:
# printable ASCII, every line ending in \n (the last too: libyaml puts a value missing at the
# end of the text on a line after it), no tab, no backslash and no `!`, so no escape, tag, line break or
# character either reads its own way, and every node's start mark (line, column: where errors
# point) is the same; tests/test_validation.py compares the two on every spec the tests hold,
# on mutated ones and on any YAML.
# Anything else, and any text libyaml refuses, is composed by PyYAML's own parser, whose
# messages and marks the errors quote.
_LIBYAML = getattr(yaml, "CSafeLoader", None)
_NOT_READ_ALIKE = re.compile(r"[^\n \"-\[\]-~]")  # (and `!`: a tag, which libyaml resolves its own way)


# Where libyaml reads YAML 1.2 and PyYAML 1.1, or is laxer, or marks otherwise: a `?` in a flow
# collection (a plain scalar's character to libyaml, a key's indicator to PyYAML), a block
# scalar's header against a comment (`|#`, which PyYAML refuses), and a value left empty in a
# flow collection (`{a: }`: libyaml marks it a column on).
_READ_OTHERWISE = re.compile(r"[|>][-+0-9]*#|:\s*[,\]}]")


def libyaml_reads_alike(text: str) -> bool:
    """Whether `text` is one libyaml's parser reads as PyYAML's does (above)."""
    return (
        _LIBYAML is not None
        and text.endswith("\n")
        and not _NOT_READ_ALIKE.search(text)
        and not ("?" in text and ("[" in text or "{" in text))
        and not _READ_OTHERWISE.search(text)
    )


def composed(text: str) -> list[yaml.Node]:
    """The YAML documents of `text`, as nodes (PyYAML's, with their marks); raises PyYAML's errors."""
    if libyaml_reads_alike(text):
        try:
            return list(yaml.compose_all(text, Loader=_LIBYAML))
        except yaml.YAMLError:
            pass  # said by PyYAML's parser below, as it says it
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def _empty(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and node.value in ("", "~", "null")
    )


def _top_scalar(node: yaml.MappingNode, key: str) -> str | None:
    """What a document's top-level `key` says, read before the document is: it tells its form."""
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return value_node.value
    return None


def _load_document(path: Path, display: str, node: yaml.Node) -> tuple[Loaded | None, list[SpecError]]:
    """One document in any of the forms modelmon reads."""
    positions = Positions(display)
    if not isinstance(node, yaml.MappingNode):
        return None, [_at_node(display, node, (), _NOT_A_MAPPING)]
    api, kind = _top_scalar(node, "apiVersion"), _top_scalar(node, "kind")
    if api is None:
        return _spec_document(path, node, positions)
    if api != sloth.API_VERSION or kind not in sloth.KINDS:
        message = f"apiVersion {api!r} with kind {kind!r} is not a form modelmon reads; expected {_FORMS}"
        return None, [_at_node(display, node, (), message)]
    try:
        spec = sloth.object_spec(node)
    except sloth.Problem as problem:
        return None, [_at_node(display, problem.node, problem.path, problem.message)]
    if kind == sloth.ALERT_WINDOWS:
        positions = Positions(display, shown={(): ("spec",)}, root=sloth.AlertWindows)
        windows, errors = _validated(spec, positions, sloth.AlertWindows)
        return (LoadedWindows(display, windows, positions) if windows is not None else None), errors
    respelled, shown, problems = sloth.respelled(spec)
    positions = Positions(display, shown=shown, spell=to_camel)
    item, errors = _spec_document(path, respelled, positions, version="prometheus/v1")
    if item is not None:
        item.spec._form = sloth.API_VERSION
    return item, [*(_at_node(display, p.node, p.path, p.message) for p in problems), *errors]


def _at_node(display: str, node: yaml.Node, path: FieldPath, message: str) -> SpecError:
    mark = node.start_mark
    return SpecError(display, mark.line + 1, mark.column + 1, format_path(path), message, path)


def _validated(
    node: yaml.Node, positions: Positions, model: type[BaseModel]
) -> tuple[BaseModel | None, list[SpecError]]:
    """A whole document of `model`, or None and its errors."""
    errors: list[SpecError] = []
    data = _to_data(node, (), positions, errors)
    try:
        value = model.model_validate(data)
    except ValidationError as err:
        return None, [*errors, *(_pydantic_error(e, positions) for e in err.errors() if e["input"] is not _REFUSED)]
    return (value if not errors else None), errors


def _spec_document(
    path: Path, node: yaml.MappingNode, positions: Positions, version: str | None = None
) -> tuple[LoadedSpec | None, list[SpecError]]:
    """A `modelmon/v1` or `prometheus/v1` spec (`version` when the form implies it)."""
    errors: list[SpecError] = []
    data = _to_data(node, (), positions, errors)
    if not isinstance(data, dict):  # `<<: *a_list` makes a mapping's data a list
        return None, [*errors, positions.error((), _NOT_A_MAPPING)]
    if version is not None:
        data = {"version": version, **data}
    fields, slos = broken_parts(errors)
    try:
        spec = SloFile.model_validate(data)
    except ValidationError as err:
        # A value YAML could not build is already reported; pydantic refusing its stand-in would repeat that.
        found = [e for e in err.errors() if e["input"] is not _REFUSED]
        problems = [_pydantic_error(e, positions) for e in found]
        errors += problems
        more_fields, more_slos = broken_parts(problems)
        misspelt = (_misspelt(e["loc"], data) for e in found if e["type"] == "extra_forbidden")
        fields |= more_fields | {name for name in misspelt if name}
        slos |= more_slos
    if not fields:
        return LoadedSpec(path, positions.file, spec, positions, frozenset(), tuple(range(len(spec.slos)))), errors
    if any(e.loc == ("slos",) for e in errors) and isinstance(data.get("slos"), list):
        slos |= set(range(len(data["slos"])))  # the list itself is refused (too long): judge none of it
    spec, indexes = _valid_parts(data, fields, slos)
    return LoadedSpec(path, positions.file, spec, positions, frozenset(fields), indexes), errors


# PyYAML notices an unclosed quote, an unclosed bracket or a key without ':' only where the
# text goes on, often a line later or at the end of the file; its context mark is where the
# quote, bracket or key opened, which is what needs fixing.
_OPENED = ("while scanning a quoted scalar", "while scanning a simple key")
_FLOW = ("while parsing a flow sequence", "while parsing a flow mapping")


def _syntax_error(err: yaml.MarkedYAMLError, text: str, display: str) -> SpecError:
    problem, opened = err.problem_mark, err.context_mark
    message = " ".join(p for p in (err.context, err.problem) if p)
    line, column = problem.line + 1, problem.column + 1
    # A bracket is unclosed when the parser gives up on a later line; on its own line the token it
    # got (a wrong closing bracket, a missing comma) is the problem itself.
    if opened and (err.context in _OPENED or (err.context in _FLOW and problem.line > opened.line)):
        message += f" (at {line}:{column})"
        line, column = opened.line + 1, opened.column + 1
    elif isinstance(err, yaml.parser.ParserError) and (quote := _runaway_quote(text, problem)):
        # end_mark is just past the closing quote, so the quote sits on the column before.
        closing = f"{quote.end_mark.line + 1}:{quote.end_mark.column}"
        message = f"the string quoted here runs on to the quote at {closing}; is its closing quote missing?"
        line, column = quote.start_mark.line + 1, quote.start_mark.column + 1
    return SpecError(display, line, column, "", f"YAML syntax error: {message}")


def _runaway_quote(text: str, problem: yaml.Mark) -> yaml.ScalarToken | None:
    """A quoted string that spans lines and ends right against the token the parser refused.

    An unclosed quote runs on to the next quote in the file, the opening quote of another string,
    whose text then sticks to it: `"svc` ... `name: "a"` reads as the string "svc ... name: " and `a"`.
    """
    before = None
    # The scanner reached the refused token without error when the parser read the file.
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if token.start_mark.index >= problem.index:
            break
        before = token
    if (
        isinstance(before, yaml.ScalarToken)
        and before.style in ('"', "'")
        and before.end_mark.index == problem.index
        and before.start_mark.line < before.end_mark.line
    ):
        return before
    return None


def _misspelt(loc: tuple, data: dict) -> str | None:
    """The top-level field an unknown top-level key was probably meant to be, when the file lacks it:
    that field is at its default, so nothing that reads it can be trusted."""
    if len(loc) != 1:
        return None
    close = _closest(str(loc[0]), specmodel.allowed_keys(()))
    return close if close is not None and close not in data else None


def _valid_parts(data: dict, broken: set[str], broken_slos: set[int]) -> tuple[SloFile, tuple[int, ...]]:
    """A spec of the top-level fields and SLOs without errors: broken fields are left unset (or at
    their default), broken SLOs out. Each part validates on its own as it did within the file."""
    keys = {name: info.alias or name for name, info in SloFile.model_fields.items()}
    values = {
        name: TypeAdapter(typing.Annotated[info.annotation, info]).validate_python(data[keys[name]])
        for name, info in SloFile.model_fields.items()
        if name != "slos" and keys[name] not in broken and keys[name] in data
    }
    items = data.get("slos")
    indexes = tuple(i for i in range(len(items)) if i not in broken_slos) if isinstance(items, list) else ()
    slos = [Slo.model_validate(items[i]) for i in indexes]
    return SloFile.model_construct(**values, slos=slos), indexes


_MERGE = "tag:yaml.org,2002:merge"
# Stands in for a value YAML could not build (an unknown tag): pydantic refuses it, and that refusal is dropped.
_REFUSED = object()


_OPENING = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


# libyaml's scanner when PyYAML has it (ten times faster); syntax errors are left to the parser
# below, whose messages the errors quote.
_SCANNER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _too_deep(text: str, display: str) -> SpecError | None:
    """The first mapping or list nested deeper than MAX_DEPTH, found by the scanner (which,
    unlike the parser, does not recurse)."""
    for scanner in dict.fromkeys((_SCANNER, yaml.SafeLoader)):
        depth = 0
        try:
            for token in yaml.scan(text, Loader=scanner):
                if isinstance(token, _OPENING):
                    depth += 1
                    if depth > MAX_DEPTH:
                        mark = token.start_mark
                        message = f"nested more than {MAX_DEPTH} levels deep; a spec needs a handful"
                        return SpecError(display, mark.line + 1, mark.column + 1, "", message)
                elif isinstance(token, _CLOSING):
                    depth -= 1
            return None
        except yaml.YAMLError:
            # libyaml refuses some text PyYAML reads (directives, escapes): scan again with PyYAML's
            # scanner; if that refuses it too, the parser reports it, at the same place.
            continue
    return None


class _Exhausted(Exception):
    """The file costs more than a spec may: reading it stops at once."""

    def __init__(self, error: SpecError):
        self.error = error


def _measure(node: yaml.Node, display: str) -> None:
    """Refuse, before anything is built, a node graph whose expansion is too big, too deep or
    endless. An alias is the very node it names, so aliases of aliases repeat a value
    exponentially and an alias inside its own anchor makes a value that contains itself; each
    node is measured once, so this takes time in proportion to the file."""
    # node -> (values once expanded, their characters, levels below it)
    measured: dict[int, tuple[int, int, int]] = {}
    open_: set[int] = set()  # the collections being measured, around the current node

    def refuse(at: yaml.Node, message: str) -> _Exhausted:
        return _Exhausted(SpecError(display, at.start_mark.line + 1, at.start_mark.column + 1, "", message))

    def measure(at: yaml.Node, depth: int) -> tuple[int, int, int]:
        if not isinstance(at, yaml.CollectionNode):
            return 1, len(at.value), 0
        if id(at) in open_:
            raise refuse(at, "this value contains itself: an alias (*name) inside it refers to its own anchor (&name)")
        if id(at) not in measured:
            if depth >= MAX_DEPTH:
                raise refuse(at, f"nested more than {MAX_DEPTH} levels deep once YAML aliases are expanded")
            open_.add(id(at))
            children = [c for pair in at.value for c in pair] if isinstance(at, yaml.MappingNode) else at.value
            sizes = [measure(child, depth + 1) for child in children]
            open_.discard(id(at))
            measured[id(at)] = (
                1 + sum(s for s, _, _ in sizes),
                sum(c for _, c, _ in sizes),
                1 + max((h for _, _, h in sizes), default=0),
            )
        size, chars, height = measured[id(at)]
        if size > MAX_VALUES:
            raise refuse(
                at,
                f"this value expands to more than {MAX_VALUES:,} values: YAML aliases (*name) repeat what they "
                "point at, so aliases of aliases multiply",
            )
        if chars > MAX_EXPANDED_CHARS:
            raise refuse(
                at,
                f"this value expands to more than {MAX_EXPANDED_CHARS:,} characters: YAML aliases (*name) repeat "
                "what they point at",
            )
        if depth + height > MAX_DEPTH:
            raise refuse(at, f"nested more than {MAX_DEPTH} levels deep once YAML aliases are expanded")
        return size, chars, height

    measure(node, 0)


def _to_data(node: yaml.Node, path: FieldPath, positions: Positions, errors: list[SpecError]) -> object:
    """Build plain data from a YAML node, recording positions and rejecting duplicate keys."""
    positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        merged: dict = {}
        # Label values are text as written, as for Sloth: `tier: 2`, `generated: true`, `le: 0.20`.
        as_text = specmodel.is_text_map(specmodel.annotation_at(path, positions.root))
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *defaults`: explicit keys win, as in YAML 1.1
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    data = _to_data(source, path, positions, errors)
                    if isinstance(data, dict):
                        merged = {**data, **merged}
                continue
            key = _scalar(key_node, path, positions, errors)
            if as_text and isinstance(key_node, yaml.ScalarNode) and not isinstance(key, str) and key is not _REFUSED:
                key = key_node.value  # a label named `on` or `yes` is that name, not a boolean
            if key is _REFUSED:
                continue
            if not isinstance(key, str | int | float | bool) or key is None:
                errors.append(positions.error(path, f"keys must be plain scalars (got {key!r})"))
                continue
            key_path = (*path, key if isinstance(key, str) else str(key))
            positions.keys[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                errors.append(positions.error(key_path, f"duplicate key {key!r}", at_key=True))
                continue
            if as_text and isinstance(value_node, yaml.ScalarNode) and not _empty(value_node):
                positions.values[key_path] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
                result[key] = _text(value_node, key_path, positions, errors)
            else:
                result[key] = _to_data(value_node, key_path, positions, errors)
        positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        return {**merged, **result}
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, i), positions, errors) for i, item in enumerate(node.value)]
    return _scalar(node, path, positions, errors)


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _text(node: yaml.ScalarNode, path: FieldPath, positions: Positions, errors: list[SpecError]) -> object:
    """A label value YAML reads as a boolean or a number, as the text Sloth makes of it (it reads
    YAML into JSON, then the JSON value into a string): true, 2, 31 for 0x1F, 0.2 for 0.20.
    Anything else YAML reads as not a string (a date) is the text as written."""
    value = _scalar(node, path, positions, errors)
    return value if value is _REFUSED else sloth_text(value, node.value)


def sloth_text(value: object, written: str) -> str:
    """The text of a scalar YAML read as `value`, written `written`, as Sloth makes it (dates: as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float32(value)
    return value if isinstance(value, str) else written


def go_float32(value: float) -> str:
    """Go's strconv.FormatFloat(value, 'g', -1, 32): the shortest digits that read back as the
    same float32, in %e form when the exponent is below -4 or at least the precision."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:  # beyond float32: Go rounds it to infinity
        single = value * float("inf")
    if single in (float("inf"), float("-inf")):
        return "+Inf" if single > 0 else "-Inf"
    for precision in range(1, 10):
        scientific = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(scientific)))[0] == single:
            break
    mantissa, _, exponent = scientific.partition("e")
    sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
    digits = digits.replace(".", "").rstrip("0") or "0"
    power = int(exponent)
    shortest = 6  # Go decides %e against 6 digits for the shortest form, or fewer when all are decimals
    if shortest > len(digits) >= power + 1:
        shortest = len(digits)
    if power < -4 or power >= shortest:
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{fraction}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return f"{single:.{max(len(digits) - power - 1, 0)}f}"


def _scalar(node: yaml.Node, path: FieldPath, positions: Positions, errors: list[SpecError]) -> object:
    # Measured as written, before anything is built from it.
    if len(node.value) > MAX_TEXT_CHARS:
        errors.append(positions.error(path, f"is {len(node.value):,} characters long; at most {MAX_TEXT_CHARS:,}"))
        return _REFUSED
    if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
        errors.append(
            positions.error(path, f"is a number {len(node.value):,} characters long; at most {MAX_NUMBER_CHARS}")
        )
        return _REFUSED
    try:
        value = yaml.SafeLoader(" ").construct_object(node)
        if isinstance(value, str):
            value.encode("utf-8")  # "\uD800" in double quotes is a lone surrogate: no file can hold it
        return value
    except UnicodeEncodeError:
        errors.append(positions.error(path, "holds an unpaired UTF-16 surrogate (\\uD800-\\uDFFF), which is not text"))
        return _REFUSED
    except yaml.constructor.ConstructorError as err:
        errors.append(positions.error(path, f"YAML: {err.problem} {node.tag!r}".replace(" for the tag", "")))
        return _REFUSED


def validation_errors(
    err: ValidationError, positions: Positions, prefix: FieldPath, model: type[BaseModel]
) -> list[SpecError]:
    """A validation by `model` of a part of a spec (at `prefix`) as positioned errors, worded as the loader's."""
    return [_pydantic_error({**e, "loc": (*prefix, *e["loc"])}, positions, (model, len(prefix))) for e in err.errors()]


def _pydantic_error(error: dict, positions: Positions, part: tuple[type[BaseModel], int] | None = None) -> SpecError:
    """A pydantic error as a positioned one; `part`: the model that validated the part of the
    document under the first n keys of the error's path (the keys it accepts are its own)."""
    loc: FieldPath = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[-1] == "[key]":  # a dict key failed (e.g. a label name)
        loc = (*loc[:-2], str(loc[-2]))
        return positions.error(loc, _reword(error), at_key=True)
    if kind == "extra_forbidden":
        key = loc[-1]
        model, depth = part or (positions.root, 0)
        allowed = specmodel.allowed_keys(loc[depth:-1], model)
        if part is None:  # the spec's own keys, in the file's spelling; a plugin's config has one spelling
            allowed = [positions.spell(name) for name in allowed]
        message = f"unknown field {key!r}"
        close = _closest(str(key), allowed)
        if close:
            message += f"; did you mean {close!r}?"
        elif allowed:
            message += f"; expected one of {', '.join(sorted(allowed))}"
        return positions.error(loc, message, at_key=True)
    if kind == "missing":
        return positions.error(loc, "is required")
    return positions.error(loc, _reword(error))


def _closest(key: str, allowed: list[str]) -> str | None:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return close[0] if close else None


def _reword(error: dict) -> str:
    """pydantic's 'Input should be ...' as the spec's 'must be ... (got ...)'."""
    message = error["msg"]
    if re.match(r"(List|Dictionary) should have at least", message):
        return "must not be empty"
    if most := re.match(r"(?:List|Dictionary) should have at most (\d+) items? after validation, not (\d+)", message):
        return f"must hold at most {int(most[1]):,} (got {int(most[2]):,})"
    _, should, rest = message.partition("should be ")
    if should:
        return f"must be {rest} (got {error['input']!r})"
    return message
