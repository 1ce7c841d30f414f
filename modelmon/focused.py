"""promtool tests run against only the rules each SLO's test groups depend on.

promtool evaluates every rule of a test file's rule files at every step of every test group.
A service file of N SLOs holds about 40 N rules and 13 N test groups, so its tests cost N²:
at 100 SLOs in one file each group evaluates a hundred times the rules it checks. `modelmon
test` runs the groups of each SLO against a copy of the rule files that holds only the rules
those groups depend on: the alerts they check, the records their queries read, and, over and
over, every rule making a record that a kept rule reads. Kept rules are copied as they are,
in their groups, with the groups' intervals and order, so each evaluates exactly as in the
full file; a rule left out makes series that nothing checked reads, directly or through
another rule. The cost of one SLO's tests no longer grows with its neighbours. A rule that no
SLO's tests depend on (a generated file has none) runs in every piece, so its evaluation
errors still fail the tests. What a piece no longer does is evaluate one SLO's rules on the
traffic of another's tests: each SLO's generated rules read only their own records and the
shared rates, and those rates run in every piece that reads them. `modelmon test
--whole-files` runs the files as they are, as plain promtool does.

A record is read where its name appears in an expression (recorded names hold a colon,
which no raw metric of the guide has, and PromQL writes a name as one token). A reader's
equality matchers on a record (`{slo="availability"}`) rule out the makers whose own labels
say otherwise (`slo: latency`): those labels overwrite whatever the expression gives. Any
other matcher keeps the maker: the closure may keep a rule it could leave out, never the
other way round. Labels and annotations are read too (a template may query), and an
expression with a `__name__` matcher reads every record.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelmon.conventions import MATCHER, unescape
from modelmon.durations import parse_duration
from modelmon.serialize import dump_yaml

# A PromQL name token, and the selector braces that may follow it.
_NAME = re.compile(r"(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\{[^{}]*\})?")
# promtool's test durations allow ms; the rules and tests modelmon writes use whole seconds.
_MILLISECONDS = re.compile(r"^(\d+)ms$")


@dataclass
class Focused:
    """The test groups of one SLO (`name` is the "<service>/<slo>" their names start with), the
    rule files cut down to what they depend on, and what promtool evaluates for them."""

    name: str
    rules: dict  # a rule file: {"groups": [...]}
    tests: dict  # the test file with only these groups; its rule_files are set by whoever writes it
    evaluations: int  # rule evaluations: kept rules times evaluation steps, summed over the groups


def owner(group_name: str) -> str | None:
    """The "<service>/<slo>" a generated test group's name starts with, None for another name."""
    head, sep, _ = group_name.partition(": ")
    return head if sep and "/" in head else None


def split(tests: dict, rule_files: list[dict]) -> list[Focused]:
    """The test file `tests` as one focused file per SLO (groups of other names run against every
    rule, together), in the order the SLOs first appear."""
    # Every group of every file, in order, and every rule with the index of its group.
    groups = [group for doc in rule_files for group in doc.get("groups") or []]
    numbered = [(index, rule) for index, group in enumerate(groups) for rule in group.get("rules") or []]
    by_slo: dict[str | None, list[dict]] = {}
    for group in tests.get("tests") or []:
        by_slo.setdefault(owner(str(group.get("name", ""))), []).append(group)
    interval = _seconds(str(tests.get("evaluation_interval", "1m")))
    everything = set(range(len(numbered)))
    # Built once: a file of 100 SLOs has about 4,000 rules and 100 pieces.
    makers: dict[str, list[int]] = {}
    alerts: dict[str, list[int]] = {}
    in_group: list[list[int]] = [[] for _ in groups]
    for index, (group_index, rule) in enumerate(numbered):
        in_group[group_index].append(index)
        if "record" in rule:
            makers.setdefault(str(rule["record"]), []).append(index)
        elif "alert" in rule:
            alerts.setdefault(str(rule["alert"]), []).append(index)
    closures = {
        name: everything if name is None else _closure(numbered, makers, alerts, test_groups)
        for name, test_groups in by_slo.items()
    }
    # A rule no SLO's tests depend on (a generated file has none) still runs, in every piece:
    # its evaluation errors fail the tests as they would against the whole file.
    unowned = everything.difference(*closures.values())
    found = []
    for name, test_groups in by_slo.items():
        kept = closures[name] | unowned
        cut = []
        for group, indexes in zip(groups, in_group, strict=True):
            members = [numbered[i][1] for i in indexes if i in kept]
            if members:
                cut.append({**group, "rules": members})
        names = {group["name"] for group in cut}
        order = [g for g in tests.get("group_eval_order") or [] if g in names]
        focused_tests = {key: value for key, value in tests.items() if key not in ("tests", "group_eval_order")}
        if order:
            focused_tests["group_eval_order"] = order
        focused_tests["tests"] = test_groups
        steps = sum(_steps(group, interval) for group in test_groups)
        found.append(Focused(name or "", {"groups": cut}, focused_tests, steps * len(kept)))
    return found


def _closure(
    numbered: list[tuple[int, dict]],
    makers: dict[str, list[int]],
    alerts: dict[str, list[int]],
    test_groups: list[dict],
) -> set[int]:
    """Indexes of the rules the test groups depend on (`makers`: the rules recording each name;
    `alerts`: the rules of each alert name)."""
    kept: set[int] = set()
    readers: list[str] = []
    for group in test_groups:
        for check in group.get("alert_rule_test") or []:
            for index in alerts.get(str(check.get("alertname", "")), []):
                if index not in kept:
                    kept.add(index)
                    readers += _texts(numbered[index][1])
        readers += [str(check.get("expr", "")) for check in group.get("promql_expr_test") or []]
    while readers:
        for name, selector in _reads(readers.pop(), makers):
            for index in makers[name]:
                if index not in kept and _may_match(selector, numbered[index][1].get("labels") or {}):
                    kept.add(index)
                    readers += _texts(numbered[index][1])
    return kept


def _texts(rule: dict) -> list[str]:
    """What a rule reads: its expression, and its labels and annotations, whose templates may query."""
    templates = {**(rule.get("labels") or {}), **(rule.get("annotations") or {})}
    return [str(rule.get("expr", "")), *(str(text) for text in templates.values())]


def _reads(expr: str, makers: dict[str, list[int]]) -> Iterator[tuple[str, dict[str, str]]]:
    """Each recorded name the expression reads, with the equality matchers it reads it by.

    An expression that may name a record another way (a `__name__` matcher) reads every record;
    one with a single- or back-quoted string has its matchers ignored (modelmon's matcher syntax
    knows double quotes only, and a quoted value could look like a matcher)."""
    if "__name__" in expr:
        yield from ((name, {}) for name in makers)
        return
    trust_matchers = "'" not in expr and "`" not in expr
    for match in _NAME.finditer(expr):
        name = match.group(1)
        if name not in makers:
            continue
        if not trust_matchers:
            yield name, {}
            continue
        equal = {}
        for matcher in MATCHER.finditer((match.group(2) or "").strip().strip("{}")):
            label, op, value = matcher.groups()
            if op == "=":
                equal[label] = unescape(value)
        yield name, equal


def _may_match(selector: dict[str, str], labels: dict) -> bool:
    """Whether series a rule with these labels makes could have the selector's equal values."""
    return all(str(labels[label]) == value for label, value in selector.items() if label in labels)


def _seconds(text: str) -> float:
    if m := _MILLISECONDS.match(text):
        return int(m.group(1)) / 1000
    return parse_duration(text)


def _steps(group: dict, default_interval: float) -> int:
    """Evaluations promtool makes for a test group: from 0 to its last checked time, at the file's interval."""
    times = [check.get("eval_time", "0s") for check in group.get("alert_rule_test") or []]
    times += [check.get("eval_time", "0s") for check in group.get("promql_expr_test") or []]
    last = max((_seconds(str(t)) for t in times), default=0)
    return int(last // default_interval) + 1


class Unsplittable(ValueError):
    """A test file to run as it is: promtool then says what is wrong with it, if anything."""


def _mapping(text: str, what: str) -> dict:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise Unsplittable(f"{what} is not YAML") from None
    if not isinstance(doc, dict):
        raise Unsplittable(f"{what} is not a mapping")
    return doc


def write(test_file: Path, scratch: Path) -> list[tuple[Path, Focused]]:
    """The focused test files of `test_file` (its rule_files read relative to it, as promtool
    does), each written with its cut-down rules into `scratch`. Unsplittable: a file that is not
    a test file modelmon could have written (broken YAML, no groups, a rule file missing, one
    group name in two rule files), which promtool is left to judge whole."""
    tests = _mapping(test_file.read_text(encoding="utf-8"), "the test file")
    if not isinstance(tests.get("tests"), list) or not tests["tests"]:
        raise Unsplittable("no test groups")
    rule_files = []
    for pattern in tests.get("rule_files") or []:
        paths = sorted(Path(found) for found in glob.glob(str(test_file.parent / str(pattern))))
        if not paths:
            raise Unsplittable(f"no rule file matches {pattern}")
        rule_files += [_mapping(path.read_text(encoding="utf-8"), str(path)) for path in paths]
    for doc in rule_files:
        groups = doc.get("groups") or []
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("rules"), list) for g in groups
        ):
            raise Unsplittable("a rule file whose groups are not a list of groups with rules")
    names = [group.get("name") for doc in rule_files for group in doc.get("groups") or []]
    if len(names) != len(set(names)) or not all(isinstance(g, dict) for g in tests["tests"]):
        raise Unsplittable("rule groups of one name in several files, or a test group that is not a mapping")
    written = []
    for index, piece in enumerate(split(tests, rule_files)):
        stem = f"{test_file.name.removesuffix('.yml')}.{index}"
        (scratch / f"{stem}.rules.yml").write_text(dump_yaml(piece.rules), encoding="utf-8")
        piece.tests["rule_files"] = [f"{stem}.rules.yml"]
        path = scratch / f"{stem}.yml"
        path.write_text(dump_yaml(piece.tests), encoding="utf-8")
        written.append((path, piece))
    return written
