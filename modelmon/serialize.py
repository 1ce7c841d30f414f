"""Structured outputs as text: YAML the way people read PromQL in it, built as data and dumped once."""

from __future__ import annotations

import re
from functools import lru_cache

import yaml

# libyaml's emitter when PyYAML was built with it (its wheels are): the pure-Python one takes
# about 1 µs a character, which a thousand SLOs' rules and tests make seconds. The two write
# the same text except for a few kinds of characters libyaml spells its own way (it escapes
# characters outside the Basic Multilingual Plane, such as emoji, yaml/libyaml#279, and the
# YAML 1.1 line breaks NEL, LS and PS, and writes a key holding a carriage return as a `? `
# key) and a string of line breaks only at the end of a document: a document holding any of
# them is dumped by the pure-Python emitter, so outputs never depend on how PyYAML was built
# (tests/test_outputs.py compares the two).
_LIBYAML_SPELLS_ITS_OWN_WAY = re.compile("[\U00010000-\U0010ffff\x85\u2028\u2029\r]|\n\n\\Z|\\A\n\\Z")
_BASE = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _dumper(base: type) -> type:
    """Block style for multi-line strings (PromQL reads as written), no anchors."""
    dumper = type(f"_{base.__name__}", (base,), {"ignore_aliases": lambda self, data: True})
    dumper.add_representer(str, _str)
    return dumper


_Dumper = _dumper(_BASE)
PURE_PYTHON_DUMPER = _dumper(yaml.SafeDumper)


def dump_yaml(data: object) -> str:
    """`data` as block-style YAML. Mappings and sequences of one-line scalars (every promtool test
    group, most rules) are laid out here, each scalar spelt by PyYAML once and kept: PyYAML's
    representer takes most of a thousand SLOs' build. Anything else (a multi-line string, a
    sequence in a sequence, a long key) is dumped by PyYAML whole; both give the same text
    (tests/test_outputs.py compares them)."""
    if isinstance(data, dict | list) and data:
        out: list[str] = []
        try:
            _block(data, 0, "", out)
        except _Unsupported:
            pass
        else:
            return "".join(out)
    return pyyaml_dump(data)


def pyyaml_dump(data: object) -> str:
    """`data` as PyYAML dumps it, with libyaml's emitter where it spells the text alike."""
    differs = any(_libyaml_spells_its_own_way(text, key) for text, key in _strings(data))
    dumper = PURE_PYTHON_DUMPER if differs else _Dumper
    return yaml.dump(data, Dumper=dumper, sort_keys=False, width=100_000, allow_unicode=True)


def _libyaml_spells_its_own_way(text: str, key: bool) -> bool:
    """Whether libyaml writes `text` otherwise than the pure emitter: the characters above, and as
    a key, the empty one (`'':` against `? ''`) and one over 128 bytes of UTF-8 but not over 128
    characters (libyaml counts bytes to its simple-key limit, the pure emitter characters: a
    Prometheus 3 label name of 43 CJK characters)."""
    return bool(_LIBYAML_SPELLS_ITS_OWN_WAY.search(text)) or (key and (not text or len(text.encode()) > 128))


class _Unsupported(Exception):
    """A part of the data whose YAML depends on where it stands: PyYAML lays out the whole."""


_SCALARS = (str, int, float, bool, type(None))


@lru_cache(maxsize=1 << 17)
def _value_text(kind: type, value: object, spelt: str | None = None) -> str:
    """A one-line scalar as PyYAML spells it after `key: ` or `- ` (kept by type, as True == 1, and
    a float by its repr too, as -0.0 == 0.0)."""
    if kind is str and (quick := _printable_ascii_text(value)) is not None:
        return quick
    text = pyyaml_dump({"k": value})
    if not text.startswith("k: ") or text.count("\n") != 1:
        raise _Unsupported
    return text[3:-1]


# PyYAML's resolver: which tag a plain scalar reads as (a plain `no` is a bool, `1.5` a float).
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
# Characters that make a plain scalar something else where they start it (the emitter's
# analyze_scalar: indicators, quotes, comments, anchors, tags, directives, block scalars).
_NOT_FIRST_IN_PLAIN = frozenset(" #,[]{}&*!|>'\"%@`")
# Longer strings are left to PyYAML: they could reach the emitter's width, where it folds them.
_QUICK_UP_TO = 1000


def _printable_ascii_text(value: str) -> str | None:
    """A one-line string of printable ASCII as PyYAML's emitter writes it in a block (a value),
    without dumping a document: plain, or else single-quoted (both emitters choose alike for
    these characters); None for any other string. Every annotation an alert test expects is its
    own string (its value is in it), and dumping one took 15 µs: 1.5 s of a thousand SLOs' tests.
    The choice is the emitter's own analysis for these characters (yaml/emitter.py,
    analyze_scalar and choose_scalar_style); tests/test_outputs.py compares it with PyYAML's
    for any text."""
    if not (0 < len(value) <= _QUICK_UP_TO and value.isascii() and value.isprintable()):
        return None
    first, rest = value[0], value[1:]
    indicator = (
        first in _NOT_FIRST_IN_PLAIN
        or (first in "?:-" and (not rest or rest[0] == " "))  # `- `, `? `, `: ` start a block
        or value.startswith(("---", "..."))  # a document's start or end
        or value[-1] in " :"  # a trailing space is lost; a trailing colon makes a key
        or ": " in value
        or " #" in value  # starts a comment
    )
    if not indicator and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
        return value
    return "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=1 << 14)
def _key_text(kind: type, key: object, spelt: str | None = None) -> str:
    """A mapping key as PyYAML spells it before `: ` (a long one takes `? `: not here)."""
    text = pyyaml_dump({key: 0})
    if not text.endswith(": 0\n") or text.count("\n") != 1 or text.startswith("? "):
        raise _Unsupported
    return text[:-4]


_OTHER_LINE_BREAK = re.compile("[\r\x85\u2028\u2029]")


# What only PyYAML knows how to write in a block: a tab or control character, other line
# breaks, a byte-order mark, anything outside the Basic Multilingual Plane.
_NOT_PLAIN_IN_BLOCK = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\U00010000-\U0010ffff]")


def _literal(value: str) -> tuple[str, tuple[str, ...]]:
    """_spelt_literal(value), and without asking PyYAML for the plain `|` blocks rule expressions
    are: one final line break, no space or break to start with (an indentation indicator), no
    space before a line break (PyYAML quotes those), only characters every emitter writes alike."""
    plain = len(value) > 1 and value[-1] == "\n" and value[-2] not in " \n" and value[0] not in " \n"
    if plain and " \n" not in value and not _NOT_PLAIN_IN_BLOCK.search(value):
        return "|", tuple(f"  {line}" if line else "" for line in value[:-1].split("\n"))
    return _spelt_literal(value)


@lru_cache(maxsize=1 << 12)
def _spelt_literal(value: str) -> tuple[str, tuple[str, ...]]:
    """A multi-line string as PyYAML writes it as a mapping's value: what follows `key: ` (a
    literal block's header, or a one-line double-quoted scalar when it cannot be a block), and
    the block's lines as they stand under a key at the top (PyYAML indents them 2 more than the
    key, so a deeper key's are that much deeper). A block that keeps its final line breaks (`|+`)
    ends a document with `...`, so it is PyYAML's to place."""
    text = pyyaml_dump({"k": value})
    first, _, rest = text.partition("\n")
    head = first.removeprefix("k: ")
    if not head.startswith("|"):
        if rest:
            raise _Unsupported
        return head, ()
    if "+" in head:
        raise _Unsupported
    return head, tuple(rest.removesuffix("\n").split("\n"))


def forget_scalars() -> None:
    """Forget the scalars spelt so far (a test that swaps the emitter spells them again)."""
    _value_text.cache_clear()
    _key_text.cache_clear()
    _spelt_literal.cache_clear()


# Line breaks to YAML (1.1, as PyYAML reads it): a scalar holding one continues on lines indented
# as deep as it stands.
_LINE_BREAK = re.compile("[\n\r\x85\u2028\u2029]")


def _one_line(value: object) -> tuple[type, object, str | None]:
    """A one-line scalar as the spellings above keep it (by type, and a float by its repr too);
    anything else is _Unsupported."""
    if type(value) not in _SCALARS or (isinstance(value, str) and _LINE_BREAK.search(value)):
        raise _Unsupported
    return type(value), value, repr(value) if type(value) is float else None


def _block(data: dict | list, indent: int, prefix: str, out: list[str]) -> None:
    """A non-empty mapping or sequence in PyYAML's block style (indent 2, sequences in a mapping
    not indented), its first line starting with `prefix`."""
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and item:
                _block(item, indent + 2, " " * indent + "- ", out)
            elif isinstance(item, list) and item:
                raise _Unsupported
            else:
                out.append(f"{' ' * indent}- {_flow_or_scalar(item)}\n")
        return
    for i, (key, value) in enumerate(data.items()):
        line = f"{prefix if i == 0 else ' ' * indent}{_key_text(*_one_line(key))}:"
        if isinstance(value, dict) and value:
            out.append(line + "\n")
            _block(value, indent + 2, " " * (indent + 2), out)
        elif isinstance(value, list) and value:
            out.append(line + "\n")
            _block(value, indent, "", out)
        elif isinstance(value, str) and "\n" in value and not _OTHER_LINE_BREAK.search(value):
            head, lines = _literal(value)
            out.append(f"{line} {head}\n")
            out += [f"{' ' * indent}{text}\n" if text else "\n" for text in lines]
        else:
            out.append(f"{line} {_flow_or_scalar(value)}\n")


def _flow_or_scalar(value: object) -> str:
    if isinstance(value, dict | list):  # empty: PyYAML writes it in flow style
        return "{}" if isinstance(value, dict) else "[]"
    return _value_text(*_one_line(value))


def _strings(data: object, key: bool = False):
    """Every string in `data`, keys included, each with whether it is a key."""
    if isinstance(data, str):
        yield data, key
    elif isinstance(data, dict):
        for name, value in data.items():
            yield from _strings(name, True)
            yield from _strings(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _strings(item)
