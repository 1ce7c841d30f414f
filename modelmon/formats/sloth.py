"""Sloth's Kubernetes resources (`apiVersion: sloth.slok.dev/v1`).

A PrometheusServiceLevel's `spec` is a `prometheus/v1` file with its fields in camelCase
(errorQuery, pageAlert); it is read by renaming its keys into modelmon's spelling, node by
node, so every value keeps the line and column it has in the file, and errors name the
field as the file spells it (spec.slos[0].sli.events.errorQuery).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import yaml
from pydantic import AfterValidator, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from modelmon import specmodel
from modelmon.conventions import SLOTH_INFO_RECORD
from modelmon.durations import parse_duration
from modelmon.spec import (
    AlertFor,
    AlertLabels,
    AlertName,
    Annotations,
    BudgetAlert,
    BudgetPercent,
    BurnWindow,
    Duration,
    InfoLabels,
    Number,
    Period,
    SlothPlugin,
    SlothPlugins,
    Spec,
)
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
    seen = set()
    for key_node, value_node in document.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise Problem(key_node, (), f"keys must be plain names: expected {', '.join(OBJECT_KEYS)}")
        key = key_node.value
        if key in seen:
            raise Problem(key_node, (key,), f"duplicate key {key!r}")
        seen.add(key)
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
            if key_node.tag == _MERGE:  # `<<: *defaults` (or a list of them) merges keys spelled the same way
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else None
                merged = (
                    yaml.SequenceNode(
                        value_node.tag,
                        [walk(n, annotation, path, written) for n in sources],
                        value_node.start_mark,
                        value_node.end_mark,
                    )
                    if sources is not None
                    else walk(value_node, annotation, path, written)
                )
                pairs.append((key_node, merged))
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


# --- SLO plugins (Sloth v0.16) ---------------------------------------------------------

# The chain Sloth runs when a spec names none: what modelmon always does itself.
DEFAULT_CHAIN = (
    "sloth.dev/core/validate/v1",
    "sloth.dev/core/sli_rules/v1",
    "sloth.dev/core/metadata_rules/v1",
    "sloth.dev/core/alert_rules/v1",
)
# The rules modelmon writes whatever the chain: a chain that replaces Sloth's without one of
# these would make Sloth leave those rules out, which modelmon cannot do.
_RULE_PLUGINS = DEFAULT_CHAIN[1:]
# Plugins honoured as they are: modelmon does their work itself, or they change no rule.
HONOURED = {
    **{plugin: "modelmon does what it does" for plugin in DEFAULT_CHAIN},
    "sloth.dev/core/debug/v1": "it only logs what it sees",
    "sloth.dev/core/noop/v1": "it does nothing",
    # Long windows of events SLIs divide the window's bad events by its events (5-minute tiles
    # of both rates, averaged), which is what this plugin changes Sloth's rules to do.
    "sloth.dev/contrib/denominator_corrected_rules/v1": "modelmon's long windows already divide the events",
}
# Mapped onto modelmon's budget-exhausted alert (alerting.budget_alert).
BUDGET_EXHAUSTED = "sloth.dev/contrib/error_budget_exhausted_alert/v1"
# Its labels go on the SLO's sloth_slo_info series, which the plugin makes modelmon write.
INFO_LABELS = "sloth.dev/contrib/info_labels/v1"
# The SLI's own queries are MetricsQL: vmalert checks them, and the generated tests load the rules
# with a stand-in for each (plan.SloPlan.metricsql).
VICTORIA_METRICS = "sloth.dev/contrib/validate_victoria_metrics/v1"
# Its intervals go on the SLO's own rule groups (plan.RuleIntervals).
RULE_INTERVALS = "sloth.dev/contrib/rule_intervals/v1"
# Known, and not honoured: what to write instead.
REFUSED = {
    "sloth.dev/contrib/remove_labels/v1": "modelmon's rules keep every label of the SLO, which its tests and "
    "dashboards select by; leave the labels out of the spec instead",
}


class BudgetExhaustedConfig(Spec):
    """error_budget_exhausted_alert/v1's config, as that plugin reads it (with its defaults)."""

    threshold: Number = Decimal(0)
    for_: AlertFor = Field(default="5m", alias="for")
    annotations: Annotations = Field(default={})
    alert_name: AlertName | None = None
    selector_labels: dict[str, str] = Field(default={})
    alert_labels: AlertLabels = Field(default={})


class InfoLabelsConfig(Spec):
    """info_labels/v1's config, as that plugin reads it."""

    # Sloth writes them as given: names Prometheus 3 reads (plug-l1), 2 does not.
    labels: InfoLabels = Field(min_length=1)  # the plugin refuses to start without one
    metric_name: str = Field(default=SLOTH_INFO_RECORD, alias="metricName")


def _positive(value: str) -> str:
    if not parse_duration(value):
        # Prometheus reads a group interval of 0 as the global one; the plugin refuses a default of 0.
        raise PydanticCustomError("duration", "must be longer than 0s")
    return value


Interval = Annotated[Duration, AfterValidator(_positive)]


@dataclass(frozen=True)
class RuleIntervals:
    """The evaluation intervals of one SLO's own rule groups: its short-window error ratios, its
    metadata and its alerts."""

    sli: str
    meta: str
    alerts: str


class _Intervals(Spec):
    default: Interval  # the plugin refuses to start without it
    sli_error: Interval | None = Field(default=None, alias="sliError")
    metadata: Interval | None = None
    alert: Interval | None = None


class RuleIntervalsConfig(Spec):
    """rule_intervals/v1's config, as that plugin reads it."""

    interval: _Intervals


def rule_intervals(file: SlothPlugins | None, slo: SlothPlugins | None) -> RuleIntervals | None:
    """The evaluation intervals rule_intervals/v1 plugins give the SLO's rules (the last plugin's,
    as each sets them over the one before), or None without such a plugin."""
    configs = _configs(file, slo, RULE_INTERVALS, RuleIntervalsConfig)
    if not configs:
        return None
    given = configs[-1].interval
    return RuleIntervals(
        sli=given.sli_error or given.default, meta=given.metadata or given.default, alerts=given.alert or given.default
    )


def metricsql(file: SlothPlugins | None, slo: SlothPlugins | None) -> bool:
    """Whether the SLO's chain validates its queries as VictoriaMetrics' MetricsQL."""
    return any(plugin.id == VICTORIA_METRICS for _, plugin in chain(file, slo))


def info_labels(file: SlothPlugins | None, slo: SlothPlugins | None) -> dict[str, str] | None:
    """The labels info_labels/v1 plugins put on the SLO's info series, each over the one before
    (as the plugin merges them), or None without such a plugin."""
    configs = _configs(file, slo, INFO_LABELS, InfoLabelsConfig)
    return {key: value for config in configs for key, value in config.labels.items()} if configs else None


def _configs(file: SlothPlugins | None, slo: SlothPlugins | None, plugin_id: str, model: type[Spec]) -> list:
    """The config of each plugin `plugin_id` of the SLO's chain, in chain order, as `model` reads it;
    none when one does not validate (the checks report it, and then stop the build)."""
    try:
        return [model.model_validate(plugin.config) for _, plugin in chain(file, slo) if plugin.id == plugin_id]
    except ValidationError:
        return []


def chain(file: SlothPlugins | None, slo: SlothPlugins | None) -> list[tuple[FieldPath, SlothPlugin]]:
    """The plugins Sloth runs for an SLO, where each is written: the file's after Sloth's default
    chain, then the SLO's; `overridePrevious` drops what comes before."""
    found: list[tuple[FieldPath, SlothPlugin]] = []
    for block, where in ((file, ("slo_plugins",)), (slo, ("plugins",))):
        if block is None:
            continue
        if block.override_previous:
            found = []
        found += [((*where, "chain", i), plugin) for i, plugin in enumerate(block.chain)]
    return sorted(found, key=lambda item: item[1].priority)


def in_file(where: FieldPath, index: int) -> FieldPath:
    """A place chain() or left_out() names, as the file's path: the file's own chain as it is, the
    SLO's under slos[index]."""
    return where if where[:1] == ("slo_plugins",) else ("slos", index, *where)


def left_out(file: SlothPlugins | None, slo: SlothPlugins | None) -> tuple[FieldPath, list[str]]:
    """The rule plugins an SLO's chain lacks once a chain has replaced Sloth's (Sloth would write
    none of their rules), and where that chain is; nothing while Sloth's default chain runs."""
    overriding = [(where, block) for where, block in ((("slo_plugins",), file), (("plugins",), slo)) if block]
    overriding = [(where, block) for where, block in overriding if block.override_previous]
    if not overriding:
        return (), []
    ids = {plugin.id for _, plugin in chain(file, slo)}
    return overriding[-1][0], [plugin for plugin in _RULE_PLUGINS if plugin not in ids]


def refusal(plugin: SlothPlugin) -> str | None:
    """Why modelmon cannot honour a plugin; None when it does."""
    if plugin.id in HONOURED or plugin.id in (BUDGET_EXHAUSTED, INFO_LABELS, RULE_INTERVALS, VICTORIA_METRICS):
        return None
    shown = plugin.id if plugin.id.isprintable() else plugin.id.encode("unicode_escape").decode("ascii")
    if plugin.id in REFUSED:
        return f"Sloth plugin {shown!r} is not supported: {REFUSED[plugin.id]}"
    return (
        f"Sloth plugin {shown!r} is Go code modelmon cannot run; modelmon honours Sloth's core plugins and "
        "some contrib ones (docs/migration.md lists them)"
    )


def budget_alert(file: SlothPlugins | None, slo: SlothPlugins | None) -> BudgetAlert | None:
    """The budget-exhausted alert an error_budget_exhausted_alert/v1 plugin asks for (checks have
    refused a config modelmon cannot honour), or None."""
    configs = _configs(file, slo, BUDGET_EXHAUSTED, BudgetExhaustedConfig)
    if not configs:
        return None
    config = configs[0]
    return BudgetAlert(
        disable=False,
        name=config.alert_name,
        labels=config.alert_labels,
        annotations=config.annotations,
        # The plugin reads a `for` of 0 as its default, 5m.
        **{"for": config.for_ if parse_duration(config.for_) else "5m"},
    )
