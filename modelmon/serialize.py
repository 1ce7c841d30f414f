"""Structured outputs as text: YAML the way people read PromQL in it, built as data and dumped once."""

from __future__ import annotations

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (PromQL reads as written), no anchors."""

    def ignore_aliases(self, data):
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100_000, allow_unicode=True)
