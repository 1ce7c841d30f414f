"""OpenSLO SLOs (`apiVersion: openslo/v1alpha`, as Sloth reads them, and `openslo/v1`) as
modelmon specs.

What maps onto a Prometheus ratio SLI is read: a ratio of good (or bad) to total events, or a
ready ratio, over a rolling window, budgeted by occurrences. Each objective is an SLO named
`<metadata.name>-<index>`, as Sloth names them, and the SLOs of one service in a file are one
service. As in Sloth, an OpenSLO SLO has no page or ticket alert (OpenSLO's alert policies are
not read: a modelmon/v1 or prometheus/v1 file is where alerts are set). Anything else is
refused where it is written, saying what is not supported.

The spec is built as YAML nodes from the document's own nodes, so each value keeps the line
and column it has in the file; `shown` maps each field back to where the file writes it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import yaml

from modelmon.conventions import WINDOW_PLACEHOLDER
from modelmon.limits import MAX_NUMBER_CHARS
from modelmon.specmodel import FieldPath

V1ALPHA = "openslo/v1alpha"
V1 = "openslo/v1"
API_VERSIONS = (V1ALPHA, V1)
# Kinds that only describe (a Service) are read and left; SLI documents are read when an SLO
# names them (indicatorRef).
KINDS = {V1ALPHA: ("SLO",), V1: ("SLO", "SLI", "Service")}

_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# OpenSLO's duration shorthand (v1): modelmon reads rolling windows of fixed length only.
_DURATION = re.compile(r"^([0-9]+)([mhdw])$")
_CALENDAR_UNITS = {"M": "month", "Q": "quarter", "Y": "year"}
_MERGE = "tag:yaml.org,2002:merge"
# The fields of each OpenSLO object modelmon reads: any other is a typo (or a field modelmon
# cannot honour, refused by name), never silently dropped.
_METADATA = ("name", "displayName", "labels", "annotations")
_SLO_SPEC = {
    V1ALPHA: ("description", "service", "budgetingMethod", "objectives", "timeWindows", "indicator"),
    V1: (
        "description",
        "service",
        "indicator",
        "indicatorRef",
        "timeWindow",
        "budgetingMethod",
        "objectives",
        "alertPolicies",
    ),
}
_OBJECTIVE = {
    V1ALPHA: ("displayName", "op", "value", "target", "targetPercent", "timeSliceTarget", "ratioMetrics"),
    V1: (
        "displayName",
        "op",
        "value",
        "target",
        "targetPercent",
        "timeSliceTarget",
        "timeSliceWindow",
        "indicator",
        "indicatorRef",
        "compositeWeight",
    ),
}
_WINDOW = {V1ALPHA: ("count", "unit", "isRolling", "calendar"), V1: ("duration", "isRolling", "calendar")}
_RATIO_V1 = ("counter", "good", "bad", "total", "raw", "rawType")
_SOURCE = ("metricSourceRef", "type", "spec")
_OBJECT = ("apiVersion", "kind", "metadata", "spec")


class Problem(Exception):
    def __init__(self, node: yaml.Node, path: FieldPath, message: str):
        self.node, self.path, self.message = node, path, message


@dataclass
class Service:
    """The modelmon spec of one service, as nodes, and where each of its fields is written."""

    name: str
    name_node: yaml.Node
    slos: list[yaml.MappingNode] = field(default_factory=list)
    shown: dict[FieldPath, FieldPath] = field(default_factory=dict)
    api: str = V1  # the apiVersion of its first SLO document: what Sloth's names say its spec is

    def node(self) -> yaml.MappingNode:
        pairs = [
            (_key("version", self.name_node), _text("modelmon/v1", self.name_node)),
            (_key("service", self.name_node), _text(self.name, self.name_node)),
            (_key("slos", self.name_node), yaml.SequenceNode(_SEQ, self.slos, self.name_node.start_mark)),
        ]
        return yaml.MappingNode(_MAP, pairs, self.name_node.start_mark, self.name_node.end_mark)


def services(documents: list[tuple[str, str, yaml.MappingNode]]) -> tuple[list[Service], list[Problem]]:
    """The services the OpenSLO documents (apiVersion, kind, node) of one file make, in order."""
    problems: list[Problem] = []
    indicators: dict[str, yaml.MappingNode] = {}
    for _, kind, node in documents:
        if kind == "SLI":
            try:
                name = _name(node)
                if name.value in indicators:
                    line = indicators[name.value].start_mark.line + 1
                    raise Problem(name, ("metadata", "name"), f"an SLI of this name is also defined at line {line}")
                indicators[name.value] = node
                _read_indicator(node, ())  # checked even when no SLO names it
            except Problem as problem:
                problems.append(problem)
    found: dict[str, Service] = {}
    for api, kind, node in documents:
        if kind != "SLO":
            continue
        try:
            _slo(api, node, indicators, found)
        except Problem as problem:
            problems.append(problem)
    # An SLI's problem is found once for it and again for each SLO that names it: said once.
    unique = {(p.node.start_mark.index, p.message): p for p in problems}
    return list(found.values()), list(unique.values())


def _slo(api: str, doc: yaml.MappingNode, indicators: dict[str, yaml.MappingNode], found: dict[str, Service]) -> None:
    _known(doc, (), _OBJECT)
    name = _name(doc)
    spec, spec_at = _mapping(doc, "spec", ())
    _known(spec, spec_at, _SLO_SPEC[api])
    service_node, _ = _scalar(spec, "service", spec_at)
    # Registered once the whole document is read: a refused one adds no (empty) service.
    service = found.get(service_node.value) or Service(service_node.value, service_node, api=api)
    slos, shown = list(service.slos), dict(service.shown)
    shown.setdefault(("service",), (*spec_at, "service"))
    shown.setdefault(("slos",), (*spec_at, "objectives"))
    if api == V1ALPHA:
        period, period_at = _period_v1alpha(spec, spec_at)
    else:
        period, period_at = _period_v1(spec, spec_at)
    method = _get(spec, "budgetingMethod")
    if method is not None and method.value != "Occurrences":
        raise Problem(
            method,
            (*spec_at, "budgetingMethod"),
            f"budgetingMethod {method.value!r} is not supported: modelmon budgets by occurrences (Occurrences), "
            "the share of good events",
        )
    if api == V1:
        _refuse(
            spec,
            "alertPolicies",
            spec_at,
            "alert policies are not read: as in Sloth, an OpenSLO SLO compiles without alerts; "
            "to alert on it, write it as a modelmon/v1 or prometheus/v1 file",
        )
        sli = _indicator_v1(spec, spec_at, indicators)
    objectives, objectives_at = _sequence(spec, "objectives", spec_at)
    description = _get(spec, "description")
    for index, objective in enumerate(objectives.value):
        at = (*objectives_at, index)
        if not isinstance(objective, yaml.MappingNode):
            raise Problem(objective, at, "must be a mapping with a target")
        _known(objective, at, _OBJECTIVE[api])
        if api == V1ALPHA:
            sli = _ratio_v1alpha(objective, at)
        else:
            _refuse(objective, "indicator", at, "an objective's own indicator is not supported: set spec.indicator")
            _refuse(objective, "indicatorRef", at, "an objective's own indicator is not supported: set spec.indicator")
            for key in ("timeSliceTarget", "timeSliceWindow"):
                _refuse(objective, key, at, "time slices are not supported: modelmon budgets by occurrences")
        k = len(slos)
        target, target_at = _target(objective, at)
        pairs = [
            (_key("name", doc), _text(f"{name.value}-{index}", name)),
            (_key("objective", target), target),
            (_key("period", period), period),
            (_key("sli", objective), sli.node(objective)),
            (_key("alerting", objective), _no_alerts(objective)),
        ]
        if description is not None:
            pairs.insert(2, (_key("description", description), description))
        slos.append(yaml.MappingNode(_MAP, pairs, objective.start_mark, objective.end_mark))
        base = ("slos", k)
        shown[base] = at
        shown[(*base, "name")] = ("metadata", "name")
        shown[(*base, "objective")] = target_at
        shown[(*base, "period")] = period_at
        shown[(*base, "description")] = (*spec_at, "description")
        shown[(*base, "sli")] = sli.where
        for role, written in sli.shown.items():
            shown[(*base, "sli", *role)] = written
    service.slos, service.shown = slos, shown
    found[service.name] = service


@dataclass
class _Sli:
    """The SLI block of an SLO, as nodes: events (bad or good, and total) or raw."""

    bad: yaml.ScalarNode | None = None
    good: yaml.ScalarNode | None = None
    total: yaml.ScalarNode | None = None
    ratio: yaml.ScalarNode | None = None  # a ready error ratio
    success_ratio: bool = False  # `ratio` is the share of good events
    shown: dict[FieldPath, FieldPath] = field(default_factory=dict)
    # The ratio metric the SLI is read from, and where it is written: errors about the SLI as a
    # whole (promtool refusing a query) stand there.
    at: yaml.Node | None = None
    where: FieldPath = ()

    def node(self, objective: yaml.Node) -> yaml.MappingNode:
        at = self.at or objective
        if self.ratio is not None:
            query = f"1 - ({self.ratio.value})" if self.success_ratio else self.ratio.value
            block = [(_key("error_ratio_query", self.ratio), _text(query, self.ratio))]
            kind = "raw"
        else:
            # OpenSLO counts good events where Sloth counts bad: the bad ones are the rest.
            bad = self.bad or _text(f"({self.total.value}) - ({self.good.value})", self.good)
            block = [(_key("error_query", bad), bad), (_key("total_query", self.total), self.total)]
            kind = "events"
        inner = yaml.MappingNode(_MAP, block, at.start_mark, at.end_mark)
        return yaml.MappingNode(_MAP, [(_key(kind, at), inner)], at.start_mark, at.end_mark)


def _ratio_v1alpha(objective: yaml.MappingNode, at: FieldPath) -> _Sli:
    """Sloth's OpenSLO: ratioMetrics with good and total Prometheus queries."""
    ratio, ratio_at = _mapping(objective, "ratioMetrics", at, hint="modelmon reads ratio metrics only")
    _known(ratio, ratio_at, ("counter", "good", "total"))
    sli = _Sli(at=ratio, where=ratio_at)
    for role in ("good", "total"):
        query, query_at = _mapping(ratio, role, ratio_at)
        _known(query, query_at, ("source", "queryType", "query", "metadata"))
        source = _get(query, "source")
        if source is None or source.value not in ("prometheus", "sloth"):
            where = source or query
            raise Problem(where, (*query_at, "source"), "must be prometheus: modelmon reads Prometheus queries")
        kind = _get(query, "queryType")
        if kind is None or kind.value != "promql":
            raise Problem(kind or query, (*query_at, "queryType"), "must be promql")
        text, text_at = _windowed(query, "query", query_at)
        setattr(sli, role, text)
        sli.shown[("events", "error_query" if role == "good" else "total_query")] = text_at
    return sli


def _indicator_v1(spec: yaml.MappingNode, spec_at: FieldPath, indicators: dict[str, yaml.MappingNode]) -> _Sli:
    inline, ref = _get(spec, "indicator"), _get(spec, "indicatorRef")
    if inline is not None and ref is not None:
        raise Problem(ref, (*spec_at, "indicatorRef"), "set indicator or indicatorRef, not both")
    if ref is not None:
        if not isinstance(ref, yaml.ScalarNode) or ref.value not in indicators:
            known = ", ".join(sorted(indicators)) or "none"
            raise Problem(
                ref, (*spec_at, "indicatorRef"), f"no kind: SLI document of this name in the file (found: {known})"
            )
        indicator, indicator_at = indicators[ref.value], ()
    elif isinstance(inline, yaml.MappingNode):
        indicator, indicator_at = inline, (*spec_at, "indicator")
    else:
        raise Problem(inline or spec, (*spec_at, "indicator"), "is required (or indicatorRef): the SLI")
    return _read_indicator(indicator, indicator_at)


def _read_indicator(indicator: yaml.MappingNode, indicator_at: FieldPath) -> _Sli:
    """An SLI (a `kind: SLI` document, or an SLO's inline indicator) as modelmon's."""
    _known(indicator, indicator_at, ("apiVersion", "kind", "metadata", "spec"))
    sli_spec, sli_at = _mapping(indicator, "spec", indicator_at)
    _known(sli_spec, sli_at, ("description", "thresholdMetric", "ratioMetric"))
    _refuse(sli_spec, "thresholdMetric", sli_at, "threshold metrics are not supported: modelmon reads ratio metrics")
    ratio, ratio_at = _mapping(sli_spec, "ratioMetric", sli_at, hint="modelmon reads ratio metrics only")
    _known(ratio, ratio_at, _RATIO_V1)
    sli = _Sli(at=ratio, where=ratio_at)
    raw = _get(ratio, "raw")
    if raw is not None:
        sli.ratio, query_at = _query(ratio, "raw", ratio_at)
        kind = _get(ratio, "rawType")
        if kind is None or kind.value not in ("success", "failure"):
            raise Problem(
                kind or ratio, (*ratio_at, "rawType"), "must be success or failure: what the raw ratio counts"
            )
        sli.success_ratio = kind.value == "success"
        sli.shown[("raw", "error_ratio_query")] = query_at
        return sli
    good, bad = _get(ratio, "good"), _get(ratio, "bad")
    if (good is None) == (bad is None):
        raise Problem(ratio, ratio_at, "needs exactly one of good and bad, and total")
    role = "good" if good is not None else "bad"
    query, query_at = _query(ratio, role, ratio_at)
    setattr(sli, role, query)
    sli.total, total_at = _query(ratio, "total", ratio_at)
    sli.shown[("events", "error_query")] = query_at
    sli.shown[("events", "total_query")] = total_at
    return sli


def _query(ratio: yaml.MappingNode, role: str, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    """A v1 metric's Prometheus query: `<role>.metricSource`, of type Prometheus, `spec.query`."""
    metric, metric_at = _mapping(ratio, role, at)
    source, source_at = _mapping(metric, "metricSource", metric_at)
    _known(source, source_at, _SOURCE)
    _refuse(source, "metricSourceRef", source_at, "data source references are not read: write the source inline")
    kind = _get(source, "type")
    if kind is None or not isinstance(kind, yaml.ScalarNode) or kind.value.lower() != "prometheus":
        raise Problem(kind or source, (*source_at, "type"), "must be Prometheus: modelmon reads Prometheus queries")
    inner, inner_at = _mapping(source, "spec", source_at)
    return _windowed(inner, "query", inner_at)


def _period_v1alpha(spec: yaml.MappingNode, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    windows = _get(spec, "timeWindows")
    if windows is None or _empty(windows):
        return _text("30d", spec), (*at, "timeWindows")  # Sloth's default period
    window, window_at = _the_window(spec, "timeWindows", at, "count and unit")
    _known(window, window_at, _WINDOW[V1ALPHA])
    _rolling(window, window_at)
    unit, _ = _scalar(window, "unit", window_at)
    if unit.value.lower() != "day":
        raise Problem(unit, (*window_at, "unit"), "must be Day: modelmon reads periods of whole days")
    count, count_at = _scalar(window, "count", window_at)
    if not re.fullmatch(r"[0-9]{1,6}", count.value) or int(count.value) == 0:
        raise Problem(count, count_at, f"must be a whole number of days (got {count.value!r})")
    return _text(f"{int(count.value)}d", count), count_at


def _the_window(spec: yaml.MappingNode, key: str, at: FieldPath, fields: str) -> tuple[yaml.MappingNode, FieldPath]:
    """The one time window of an SLO (OpenSLO's is a list: modelmon's SLO has one period)."""
    windows, windows_at = _sequence(spec, key, at)
    if len(windows.value) != 1:
        raise Problem(windows, windows_at, "must hold one time window")
    window, window_at = windows.value[0], (*windows_at, 0)
    if not isinstance(window, yaml.MappingNode):
        raise Problem(window, window_at, f"must be a mapping with {fields}")
    return window, window_at


def _period_v1(spec: yaml.MappingNode, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    window, window_at = _the_window(spec, "timeWindow", at, "duration and isRolling")
    _known(window, window_at, _WINDOW[V1])
    _rolling(window, window_at)
    duration, duration_at = _scalar(window, "duration", window_at)
    unit = duration.value[-1:]
    if unit in _CALENDAR_UNITS:
        raise Problem(
            duration,
            duration_at,
            f"a {_CALENDAR_UNITS[unit]} is not a fixed length: write the period in days (e.g. 30d)",
        )
    if not _DURATION.match(duration.value):
        raise Problem(duration, duration_at, f"must be a duration like 28d or 4w (got {duration.value!r})")
    return duration, duration_at


def _target(objective: yaml.MappingNode, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    """The objective as modelmon's percentage: `target` is a ratio (0.999), `targetPercent` a percentage."""
    ratio, percent = _get(objective, "target"), _get(objective, "targetPercent")
    if (ratio is None) == (percent is None):
        raise Problem(objective, at, "needs exactly one of target (a ratio, e.g. 0.999) and targetPercent")
    node, key = (ratio, "target") if ratio is not None else (percent, "targetPercent")
    try:
        value = (
            Decimal(node.value) if isinstance(node, yaml.ScalarNode) and len(node.value) <= MAX_NUMBER_CHARS else None
        )
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise Problem(node, (*at, key), f"must be a number (got {_shown(node)})")
    top = 1 if key == "target" else 100
    if not 0 < value < top:
        what = "a ratio between 0 and 1" if key == "target" else "a percentage between 0 and 100"
        raise Problem(node, (*at, key), f"must be {what} exclusive (got {node.value})")
    if key == "target":
        value *= 100
    shown = format(value.normalize(), "f")
    tag = _FLOAT if "." in shown else "tag:yaml.org,2002:int"
    return yaml.ScalarNode(tag, shown, node.start_mark, node.end_mark), (*at, key)


def _no_alerts(at: yaml.Node) -> yaml.MappingNode:
    off = [(_key("disable", at), yaml.ScalarNode(_BOOL, "true", at.start_mark, at.end_mark))]
    pairs = [
        (_key(block, at), yaml.MappingNode(_MAP, list(off), at.start_mark, at.end_mark))
        for block in ("page_alert", "ticket_alert")
    ]
    return yaml.MappingNode(_MAP, pairs, at.start_mark, at.end_mark)


# --- reading nodes -----------------------------------------------------------------------


def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value of `key`: the mapping's own, else one merged in (`<<: *defaults`), as YAML 1.1 reads it."""
    if not isinstance(node, yaml.MappingNode):
        return None
    merged = []
    for key_node, value in node.value:
        if key_node.tag == _MERGE:
            merged += value.value if isinstance(value, yaml.SequenceNode) else [value]
        elif isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value
    for source in merged:
        if (found := _get(source, key)) is not None:
            return found
    return None


def _name(doc: yaml.MappingNode) -> yaml.ScalarNode:
    metadata, at = _mapping(doc, "metadata", ())
    _known(metadata, at, _METADATA)
    name, _ = _scalar(metadata, "name", at)
    return name


def _mapping(node: yaml.Node, key: str, at: FieldPath, hint: str = "") -> tuple[yaml.MappingNode, FieldPath]:
    found = _get(node, key)
    if not isinstance(found, yaml.MappingNode):
        raise Problem(found or node, (*at, key), _wanted(found, "a mapping") + (f" ({hint})" if hint else ""))
    return found, (*at, key)


def _sequence(node: yaml.Node, key: str, at: FieldPath) -> tuple[yaml.SequenceNode, FieldPath]:
    found = _get(node, key)
    if not isinstance(found, yaml.SequenceNode) or not found.value:
        raise Problem(found or node, (*at, key), _wanted(found, "a list"))
    return found, (*at, key)


def _scalar(node: yaml.Node, key: str, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    found = _get(node, key)
    if not isinstance(found, yaml.ScalarNode) or found.tag == "tag:yaml.org,2002:null":
        raise Problem(found or node, (*at, key), _wanted(found, "a value"))
    return found, (*at, key)


def _windowed(node: yaml.Node, key: str, at: FieldPath) -> tuple[yaml.ScalarNode, FieldPath]:
    """A query, which needs {{.window}} where the range goes (the SLI's windows replace it)."""
    query, query_at = _scalar(node, key, at)
    if not WINDOW_PLACEHOLDER.search(query.value):
        raise Problem(query, query_at, "must contain the {{.window}} placeholder where the range goes")
    return query, query_at


def _rolling(window: yaml.MappingNode, at: FieldPath) -> None:
    _refuse(window, "calendar", at, "calendar windows are not supported: modelmon's periods are rolling")
    rolling = _get(window, "isRolling")
    # YAML 1.1's booleans: true, yes, on.
    if rolling is not None and not (
        isinstance(rolling, yaml.ScalarNode) and rolling.value.lower() in ("true", "yes", "on")
    ):
        raise Problem(rolling, (*at, "isRolling"), "calendar windows are not supported: modelmon's periods are rolling")


def _known(node: yaml.MappingNode, at: FieldPath, fields: tuple[str, ...]) -> None:
    """Refuse a key the object does not have (with the closest it has), and a key written twice."""
    seen: set[str] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise Problem(key_node, at, f"keys must be plain names: expected {', '.join(fields)}")
        if key in seen:
            raise Problem(key_node, (*at, key), f"duplicate key {key!r}")
        seen.add(key)
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(sorted(fields))}"
            raise Problem(key_node, (*at, key), f"unknown field {key!r}; {hint}")


def _empty(node: yaml.Node) -> bool:
    return (isinstance(node, yaml.SequenceNode) and not node.value) or (
        isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
    )


def _shown(node: yaml.Node | None) -> str:
    """A value for an error message: a scalar as written, anything else by its kind."""
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _wanted(found: yaml.Node | None, what: str) -> str:
    return "is required: " + what if found is None or _empty(found) else f"must be {what} (got {_shown(found)})"


def _refuse(node: yaml.Node, key: str, at: FieldPath, why: str) -> None:
    found = _get(node, key)
    if found is not None:
        raise Problem(found, (*at, key), why)


def _key(name: str, at: yaml.Node) -> yaml.ScalarNode:
    return yaml.ScalarNode(_STR, name, at.start_mark, at.end_mark)


def _text(value: str, at: yaml.Node) -> yaml.ScalarNode:
    return yaml.ScalarNode(_STR, value, at.start_mark, at.end_mark)
