"""Structured outputs as text: YAML the way people read PromQL in it, built as data and dumped once."""

from __future__ import annotations

import re

import yaml

# libyaml's emitter when PyYAML was built with it (its wheels are): the pure-Python one takes
# about 1 µs a character, which a thousand SLOs' rules and tests make seconds. The two write
# the same text except for a few kinds of characters libyaml spells its own way (it escapes
# characters outside the Basic Multilingual Plane, such as emoji, yaml/libyaml#279, and the
# YAML 1.1 line breaks NEL, LS and PS) and a string of line breaks only at the end of a
# document: a document holding any of them is dumped by the pure-Python emitter, so outputs
# never depend on how PyYAML was built (tests/test_outputs.py compares the two).
_LIBYAML_SPELLS_ITS_OWN_WAY = re.compile("[\U00010000-\U0010ffff\x85\u2028\u2029]|\n\n\\Z|\\A\n\\Z")
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
    dumper = PURE_PYTHON_DUMPER if any(map(_LIBYAML_SPELLS_ITS_OWN_WAY.search, _strings(data))) else _Dumper
    return yaml.dump(data, Dumper=dumper, sort_keys=False, width=100_000, allow_unicode=True)


def _strings(data: object):
    """Every string in `data`, keys included."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _strings(item)
