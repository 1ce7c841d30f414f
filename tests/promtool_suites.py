"""Hand-written promtool test groups run against the rules a project compiles to, and the
expected alerts of a rule as Prometheus renders them."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelmon import build, promtool
from modelmon.gotemplate import render


def run_promtool_tests(project: Path, name: str, tests: list[dict]) -> tuple[bool, str]:
    """Compile and write the project (one service), then run these test groups against its rules."""
    compiled = build.compile_all(project)
    build.write_all(project, compiled)
    [service] = compiled.rules
    suite = {
        "rule_files": [f"rules/{service}.yml"],
        "evaluation_interval": "1m",
        "group_eval_order": compiled.rules[service].group_names,
        "tests": tests,
    }
    (project / name).write_text(yaml.safe_dump(suite, sort_keys=False))
    ok, _, output = promtool.test_rules([Path(name)], cwd=project)
    return ok, output


def expected_alert(rule: dict, labels: dict[str, str], value: float) -> dict:
    """What promtool must see of `rule` firing for a series with `labels` at `value`."""
    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {k: render(v, labels, value) for k, v in rule["annotations"].items()},
    }


def series_text(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
