"""Sloth's Kubernetes resources (`apiVersion: sloth.slok.dev/v1`).

A PrometheusServiceLevel's `spec` is a `prometheus/v1` file with its fields in camelCase
(errorQuery, pageAlert); it is read by renaming its keys into modelmon's spelling, node by
node, so every value keeps the line and column it has in the file, and errors name the
field as the file spells it (spec.slos[0].sli.events.errorQuery).
"""

from __future__ import annotations

import difflib

import yaml
from pydantic import Field
from pydantic.alias_generators import to_camel

from modelmon import specmodel
from modelmon.spec import BudgetPercent, BurnWindow, Duration, Period, Spec
from modelmon.specmodel import FieldPath

API_VERSION = "sloth.slok.dev/v1"
SERVICE_LEVEL = "PrometheusServiceLevel"
ALERT_WINDOWS = "AlertWindows"
KINDS = (SERVICE_LEVEL, ALERT_WINDOWS)
# A Kubernetes object's own keys; Sloth reads only `spec` (metadata names the PrometheusRule it writes).
OBJECT_KEYS = ("apiVersion", "kind", "metadata", "spec")

_MERGE = "tag:yaml.org,2002:merge"


class Problem(Exception):
    """Where a resource is wrong, as the node that is wrong and what to say about it."""

    def __init__(self, node: yaml.Node, path: FieldPath, message: str):
        self.node, self.path, self.message = node, path, message


def object_spec(document: yaml.MappingNode) -> yaml.Node:
    """The `spec` of a Kubernetes object; unknown top-level keys are problems."""
    spec = None
    for key_node, value_node in document.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in OBJECT_KEYS:
            close = difflib.get_close_matches(str(key), OBJECT_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected {', '.join(OBJECT_KEYS)}"
            raise Problem(key_node, (str(key),), f"unknown field {key!r}; {hint}")
        if key == "spec":
            spec = value_node
    if not isinstance(spec, yaml.MappingNode):
        raise Problem(spec or document, ("spec",), "must be a mapping (the resource's SLOs)")
    return spec


def respelled(spec: yaml.MappingNode) -> tuple[yaml.MappingNode, dict[FieldPath, FieldPath], list[Problem]]:
    """A PrometheusServiceLevel's spec with its keys in modelmon's spelling (node marks kept), where
    each renamed key stands in the file (for errors), and the keys spelled modelmon's way, which
    the resource does not accept: Sloth would ignore them, so they would silently do nothing."""
    shown: dict[FieldPath, FieldPath] = {(): ("spec",)}
    problems: list[Problem] = []

    def walk(node: yaml.Node, annotation: object, path: FieldPath, written: FieldPath) -> yaml.Node:
        if isinstance(node, yaml.SequenceNode):
            item = specmodel.child(annotation, 0)
            items = [walk(n, item, (*path, i), (*written, i)) for i, n in enumerate(node.value)]
            return yaml.SequenceNode(node.tag, items, node.start_mark, node.end_mark, node.flow_style)
        if not isinstance(node, yaml.MappingNode):
            return node
        names = specmodel.fields(annotation)
        spelled = {to_camel(name): name for name in names}
        pairs = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *defaults` merges keys spelled the same way
                pairs.append((key_node, walk(value_node, annotation, path, written)))
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not names or key is None or (key not in spelled and key not in names):
                # A map of names (labels) keeps its keys; an unknown field is pydantic's to report.
                value = specmodel.child(annotation, key) if isinstance(key, str) else None
                pairs.append((key_node, walk(value_node, value, (*path, str(key)), (*written, str(key)))))
                continue
            if key not in spelled:
                message = (
                    f"unknown field {key!r}; did you mean {to_camel(key)!r}? A {SERVICE_LEVEL} spells its "
                    "fields in camelCase (Sloth ignores this one)"
                )
                problems.append(Problem(key_node, (*written, key), message))
                continue
            name = spelled[key]
            if name != key:
                shown[(*path, name)] = (*written, key)
                key_node = yaml.ScalarNode(key_node.tag, name, key_node.start_mark, key_node.end_mark)
            pairs.append((key_node, walk(value_node, names[name], (*path, name), (*written, key))))
        return yaml.MappingNode(node.tag, pairs, node.start_mark, node.end_mark, node.flow_style)

    translated = walk(spec, specmodel.annotation_at(()), (), ("spec",))
    return translated, shown, problems


# --- AlertWindows: the burn-rate windows of one SLO period ------------------------------


class _Window(Spec):
    error_budget_percent: BudgetPercent = Field(alias="errorBudgetPercent")
    short_window: Duration = Field(alias="shortWindow")
    long_window: Duration = Field(alias="longWindow")


class _Severity(Spec):
    quick: _Window
    slow: _Window


class AlertWindows(Spec):
    """Sloth's `kind: AlertWindows` spec: page and ticket windows for SLOs of one period."""

    slo_period: Period = Field(alias="sloPeriod")
    page: _Severity
    ticket: _Severity

    def burn_windows(self) -> list[BurnWindow]:
        """The four windows as modelmon's: without `for`, as Sloth writes them."""
        return [
            BurnWindow(
                severity=severity, long=w.long_window, short=w.short_window, budget_percent=w.error_budget_percent
            )
            for severity, pair in (("page", self.page), ("ticket", self.ticket))
            for w in (pair.quick, pair.slow)
        ]
