"""Structured outputs as text: YAML the way people read PromQL in it, built as data and dumped once."""

from __future__ import annotations

import yaml

# libyaml's emitter when PyYAML was built with it (its wheels are): the pure-Python one takes
# about 1 µs a character, which a thousand SLOs' rules and tests make seconds. The two write
# the same data and, for what modelmon generates, the same text (tests/test_outputs.py);
# they may spell unusual text differently (libyaml escapes characters outside the Basic
# Multilingual Plane, such as emoji, in label values).
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
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100_000, allow_unicode=True)
