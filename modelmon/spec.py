"""The SLO spec: what people write in `slos/*.yaml`, as pydantic models.

The core is Sloth's `prometheus/v1` format, so a Sloth file validates unchanged.
modelmon adds shortcuts for the guide's metric contract (availability, error rate,
latency per model), a period per SLO, configurable burn-rate windows and
threshold alerts. Every field carries a description: it is exported into the JSON
Schema that editors use to complete and check the YAML.

Checks that need more than one field (duplicates, windows against the scrape
interval, placeholders) live in `modelmon.checks`, where they can name the exact
field at fault.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from modelmon import contract, markup, promregex
from modelmon.conventions import LABEL_NAME, MATCHER, SELECTOR, WINDOW_PLACEHOLDER, bad_escape, unescape
from modelmon.durations import format_duration, parse_duration
from modelmon.gotemplate import unsupported_template
from modelmon.limits import (
    MAX_DURATION_S,
    MAX_FAMILIES,
    MAX_FOR_S,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_NAME_CHARS,
    MAX_PERIOD_S,
    MAX_SLOS_PER_FILE,
    MAX_WINDOWS,
)

SLO_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# An alert name is a label value to Prometheus (2.42 and 3.x load any); modelmon also makes it a
# runbook page and a link, so it keeps to letters, digits, _ and - (Sloth's slo_foo-bar_..._fail).
ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")


def _fail(kind: str, message: str, **context: object) -> PydanticCustomError:
    # PydanticCustomError keeps our message as it is ("must be ...") instead of
    # pydantic's "Value error, ..." prefix, so every error reads the same way.
    return PydanticCustomError(kind, message, context)


def _duration(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("duration", "must be a duration like 5m, 1h or 30d (got {got})", got=repr(value))
    if len(value) > _LONGEST_DURATION_TEXT:
        raise _fail("duration", "must be at most {most} (got {length} characters)", most=_LONGEST, length=len(value))
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise _fail("duration", "{reason}", reason=str(err)) from None
    if seconds > MAX_DURATION_S:
        # Prometheus refuses durations past int64 nanoseconds (about 292y) in a rule file.
        raise _fail("duration", "must be at most {most} (got {got})", most=_LONGEST, got=value)
    return value


_LONGEST = format_duration(MAX_DURATION_S)


def _at_most(limit_s: int, why: str = ""):
    """A validator of durations up to `limit_s`; `why` follows the limit in its error."""

    def check(value: str) -> str:
        if parse_duration(value) > limit_s:
            raise _fail(
                "duration", "must be at most {most}" + why + " (got {got})", most=format_duration(limit_s), got=value
            )
        return value

    return check


# Every unit with a count of up to twelve digits: anything longer is over the bound anyway.
_LONGEST_DURATION_TEXT = 6 * 13


def _percent_open(value: Decimal) -> Decimal:
    if not Decimal(0) < value < Decimal(100):
        raise _fail("range", "must be between 0 and 100 exclusive (got {got})", got=_show(value))
    return value


def _percent_upto(value: Decimal) -> Decimal:
    if not Decimal(0) < value <= Decimal(100):
        raise _fail("range", "must be above 0 and at most 100 (got {got})", got=_show(value))
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise _fail("empty", "must not be empty")
    return value


def _label_name(value: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        # Copied into every rule like a label value; not echoed, it is long.
        raise _fail("length", "must be at most {most} characters (got {got})", most=MAX_NAME_CHARS, got=len(value))
    if not LABEL_NAME.match(value):
        raise _fail(
            "label_name",
            "{got} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            got=repr(value),
        )
    if value.startswith("__"):
        raise _fail("label_name", "{got}: names starting with __ are reserved by Prometheus", got=repr(value))
    return value


def _utf8_label_name(value: str) -> str:
    """A label name as Prometheus 3 reads one (any UTF-8 text): printable here, so that every file
    it is written into shows it; Prometheus 2 refuses one outside [a-zA-Z_][a-zA-Z0-9_]*."""
    if len(value) > MAX_NAME_CHARS:
        raise _fail("length", "must be at most {most} characters (got {got})", most=MAX_NAME_CHARS, got=len(value))
    if not value or not value.isprintable():
        raise _fail("label_name", "{got} is not a label name: it must be printable text", got=repr(value))
    if value.startswith("__"):
        raise _fail("label_name", "{got}: names starting with __ are reserved by Prometheus", got=repr(value))
    return value


def _label_value(value: str) -> str:
    if value == "":
        raise _fail(
            "label_value",
            "an empty label value is the same as no label in Prometheus; remove the label instead",
        )
    if len(value) > MAX_LABEL_VALUE_CHARS:
        # Copied into every rule, alert and test of the SLO: a long one multiplies the compile.
        raise _fail(
            "length",
            "must be at most {most} characters (got {got})",
            most=f"{MAX_LABEL_VALUE_CHARS:,}",
            got=f"{len(value):,}",
        )
    return value


def _refuse_go_template(value: str, where: str, *, shown: bool, **context: str) -> str:
    """`value` unless it holds Go template delimiters, which `where` (Prometheus, Alertmanager) would
    run rather than show; `shown`: the error may echo the value (never a possible secret)."""
    if "{{" in value or "}}" in value:
        if shown:
            where, context = where + " (got {got})", {**context, "got": repr(value)}
        raise _fail("template", "must not hold {open} or {close}: " + where, open="'{{'", close="'}}'", **context)
    return value


def _plain_label_value(value: str) -> str:
    # These labels reach alert rules too, whose label values Prometheus expands as Go templates
    # at every evaluation: spec text there must stay text.
    where = "Prometheus would run it as a Go template on every alert (alerting.labels accept {example})"
    return _refuse_go_template(value, where, shown=True, example="{{ $labels.NAME }}")


def _selector(value: str) -> str:
    if not SELECTOR.match(value):
        hint = " (a line break inside quotes is written \\n)" if "\n" in value else ""
        raise _fail(
            "selector",
            'must be PromQL label matchers such as model=~"claude.*"{hint} (got {got})',
            got=repr(value),
            hint=hint,
        )
    for match in MATCHER.finditer(value):
        label, op, quoted = match.groups()
        if escape := bad_escape(quoted):
            raise _fail(
                "selector", "{label}{op}: {escape} is not an escape PromQL knows", label=label, op=op, escape=escape
            )
        if op in ("=~", "!~") and (problem := promregex.problem(unescape(quoted))):
            raise _fail(
                "regex",
                "{label}{op}{quoted}: not a regular expression Prometheus accepts (RE2 syntax): {problem}",
                label=label,
                op=op,
                quoted=f'"{quoted}"',
                problem=problem,
            )
    return value


def _windowed(value: str) -> str:
    if not WINDOW_PLACEHOLDER.search(value):
        raise _fail("placeholder", "must contain the {{.window}} placeholder where the range goes")
    return value


def _bucket_bound(value: Decimal) -> Decimal:
    if float(value) not in contract.LATENCY_BUCKETS_MS:
        bounds = [_show(Decimal(repr(b))) for b in contract.nearest_bounds(float(value)) if b is not None]
        nearest = (
            f"the nearest bounds are {bounds[0]} and {bounds[1]}"
            if len(bounds) == 2
            else f"the nearest bound is {bounds[0]}"
        )
        raise _fail(
            "bucket",
            "{got} ms is not a bucket bound of {metric}; {nearest}",
            got=_show(value),
            metric=contract.LATENCY_MS,
            nearest=nearest,
        )
    return value


def _renderable(value: str) -> str:
    problem = unsupported_template(value)
    if problem:
        raise _fail("template", "{problem}", problem=problem)
    return value


def _alert_label_template(value: str) -> str:
    # Prometheus expands templates in an alert rule's labels too: only what modelmon can render.
    problem = unsupported_template(value, "alert labels", value=False)
    if problem:
        raise _fail("template", "{problem}", problem=problem)
    return value


def _short(value: str) -> str:
    # Names become file names and parts of them (rules/<service>.yml, a runbook page per alert).
    if len(value) > MAX_NAME_CHARS:
        raise _fail("length", "must be at most {most} characters (got {got})", most=MAX_NAME_CHARS, got=len(value))
    return value


def _url_parts(value: str) -> SplitResult | None:
    try:
        return urlsplit(value)
    except ValueError:  # unbalanced brackets
        return None


def _port_readable(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        return False
    return True


def _web_address(value: str, *, shown: bool, credentials: str) -> SplitResult:
    """The parts of an http:// or https:// address with a host (and a valid port, if any), never
    with credentials in it (`credentials` says where they belong instead); `shown`: the error
    may echo the value (never a possible secret, nor a value holding credentials)."""
    got, context = (" (got {got})", {"got": repr(value)}) if shown else (" (the value is not shown)", {})
    parts = _url_parts(value)
    if parts is not None and "@" in parts.netloc:
        raise _fail("secret", "holds credentials (user:password@): they would be written into " + credentials)
    if parts is None or not _port_readable(parts):
        # Not urllib's reason: it quotes the part it could not read, which may be a secret.
        raise _fail("url", "is not a URL: its host, port or brackets are malformed" + got, **context)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail("url", "must be an http:// or https:// address with a host" + got, **context)
    return parts


def _http_url(value: str) -> str:
    # Every alert links here: only a web address, never a script (javascript:) or a template.
    parts = _web_address(value, shown=True, credentials="every alert's links; link to the address without them")
    if any(c.isspace() or ord(c) < 32 or c in '{}<>"\\' for c in value):
        raise _fail(
            "url",
            "must not hold spaces, control characters or any of {chars} (URL-encode them) (got {got})",
            chars='{ } < > " \\',
            got=repr(value),
        )
    if parts.query or parts.fragment:
        raise _fail(
            "url",
            "must not have a query or fragment: modelmon appends the paths and parameters (got {got})",
            got=repr(value),
        )
    return value


def _slo_name(value: str) -> str:
    _short(value)
    if not SLO_NAME.match(value):
        raise _fail(
            "slo_name",
            "must start with a letter or digit and hold only letters, digits, '-', '_' and '.' (got {got})",
            got=repr(value),
        )
    return value


def _alert_name(value: str) -> str:
    _short(value)
    if not ALERT_NAME.match(value):
        raise _fail("alert_name", "must be an alert name like ModelAvailabilityBudgetBurn (got {got})", got=repr(value))
    return value


def _show(value: Decimal) -> str:
    """A number as people wrote it: 1000000 rather than 1E+6, 100.5 as is."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def _to_decimal(value: object) -> object:
    # YAML gives floats; going through str keeps 99.9 as exactly 99.9.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bool):
        return value  # pydantic rejects it with a type error
    return value


Number = Annotated[Decimal, BeforeValidator(_to_decimal), WithJsonSchema({"type": "number"})]
Percent = Annotated[Number, AfterValidator(_percent_open)]
BudgetPercent = Annotated[Number, AfterValidator(_percent_upto)]
Duration = Annotated[
    str,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^([0-9]+[ywdhms])+$"}),
]
# The generated tests replay a whole period of traffic (a year: about 6 s and 300 MB), and an
# alert through its whole `for` (threshold alerts held 1d: 40 s an SLO); an alert held back for
# hours after the problem began reports what the tickets already did.
Period = Annotated[Duration, AfterValidator(_at_most(MAX_PERIOD_S))]
AlertFor = Annotated[Duration, AfterValidator(_at_most(MAX_FOR_S, ": a longer wait belongs in a longer window"))]
LabelName = Annotated[str, AfterValidator(_label_name)]


def _distinct(names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise _fail("repeated", "names {names} more than once", names=", ".join(repeated))
    return names


# Labels to group by: each once, no more than a label block holds.
GroupBy = Annotated[list[LabelName], Field(max_length=MAX_LABELS), AfterValidator(_distinct)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Labels = Annotated[
    dict[LabelName, Annotated[LabelValue, AfterValidator(_plain_label_value)]], Field(max_length=MAX_LABELS)
]
# Labels of an info series, which no rule reads or groups by: Prometheus 3's UTF-8 names too.
InfoLabels = Annotated[
    dict[Annotated[str, AfterValidator(_utf8_label_name)], Annotated[LabelValue, AfterValidator(_plain_label_value)]],
    Field(max_length=MAX_LABELS),
]
# Labels a rule puts on its alerts: Prometheus expands Go templates in them.
AlertLabels = Annotated[
    dict[LabelName, Annotated[LabelValue, AfterValidator(_alert_label_template)]], Field(max_length=MAX_LABELS)
]
WebUrl = Annotated[str, AfterValidator(_http_url)]
Query = Annotated[str, AfterValidator(_non_empty)]
WindowedQuery = Annotated[Query, AfterValidator(_windowed)]
Annotations = dict[LabelName, Annotated[str, AfterValidator(_renderable)]]
Selector = Annotated[str, AfterValidator(_selector)]


class Spec(BaseModel):
    """Base of every spec block: unknown keys are errors (with a suggestion), never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- SLIs -----------------------------------------------------------------------


class EventsSli(Spec):
    """Sloth's events SLI: the error ratio is error_query / total_query."""

    error_query: WindowedQuery = Field(
        description="PromQL counting bad events per second, with {{.window}} where the range goes, "
        'e.g. sum(rate(http_requests_total{code=~"5.."}[{{.window}}])).'
    )
    total_query: WindowedQuery = Field(
        description="PromQL counting all events per second, with {{.window}} where the range goes."
    )
    group_by: GroupBy = Field(
        default=[],
        description="Labels the two queries keep (their `by (...)`), one SLO series per combination. "
        "Declaring them lets modelmon generate tests and dashboards per group.",
    )


class RawSli(Spec):
    """Sloth's raw SLI: a query that already returns the error ratio (0..1)."""

    error_ratio_query: WindowedQuery = Field(
        description="PromQL returning the error ratio between 0 and 1, with {{.window}} where the range goes."
    )
    group_by: GroupBy = Field(default=[], description="Labels the query keeps, one SLO series per combination.")


class ModelTraffic(Spec):
    """Which model series an SLI shortcut reads, and how it groups them."""

    selector: Selector | None = Field(
        default=None,
        description='Extra label matchers restricting the models, e.g. model=~"claude.*". '
        "Applied to every series the SLI reads.",
    )
    group_by: GroupBy = Field(
        default=[contract.MODEL_LABEL],
        description="Labels the SLI is evaluated by: one SLO series (and one alert) per combination. "
        "Defaults to [model]; [] gives one SLO over all models.",
    )


class AvailabilitySli(ModelTraffic):
    """Share of model calls that did not fail: 1 - model_errors_total / model_requests_total."""

    warning_below: Percent | None = Field(
        default=contract.AVAILABILITY_BAND[0],
        description="Threshold alert (warning) when availability over 5m drops below this percentage "
        "(the guide's yellow band starts at 99). null disables it.",
    )
    critical_below: Percent | None = Field(
        default=contract.AVAILABILITY_BAND[1],
        description="Threshold alert (critical) when availability over 5m drops below this percentage "
        "(the guide's red band starts at 95). null disables it.",
    )


class ErrorRateSli(ModelTraffic):
    """Share of model calls that failed: model_errors_total / model_requests_total."""

    warning_above: Percent | None = Field(
        default=contract.ERROR_RATE_BAND[0],
        description="Threshold alert (warning) when the error rate over 5m rises above this percentage "
        "(the guide's yellow band starts at 5). null disables it.",
    )
    critical_above: Percent | None = Field(
        default=contract.ERROR_RATE_BAND[1],
        description="Threshold alert (critical) when the error rate over 5m rises above this percentage "
        "(the guide's red band starts at 10). null disables it.",
    )


class LatencySli(ModelTraffic):
    """Share of model calls slower than a threshold, read from the model_latency_ms histogram."""

    threshold_ms: Annotated[Number, AfterValidator(_bucket_bound)] = Field(
        description="Calls taking longer than this many milliseconds are errors. Must be a bucket bound "
        f"of {contract.LATENCY_MS}: {', '.join(f'{b:g}' for b in contract.LATENCY_BUCKETS_MS)}."
    )


def _refuse_sli_plugin(value: dict) -> dict:
    plugin = value.get("id")
    named = f"Sloth SLI plugin {plugin!r}" if isinstance(plugin, str) and plugin.isprintable() else "a Sloth SLI plugin"
    raise _fail(
        "sli_plugin",
        "{named} is Go code modelmon cannot run: write the query it makes (`sloth generate` shows it in the "
        "slo:sli_error:ratio_rate5m rule) as sli.raw.error_ratio_query, or as sli.events with error_query and "
        "total_query, each with {{.window}} where the range goes",
        named=named,
    )


class Sli(Spec):
    """How to measure the error ratio: exactly one of the blocks below."""

    events: EventsSli | None = Field(default=None, description="Sloth events SLI (error and total queries).")
    raw: RawSli | None = Field(default=None, description="Sloth raw SLI (an error-ratio query).")
    availability: AvailabilitySli | None = Field(
        default=None, description="Shortcut: availability of model calls from the guide's counters."
    )
    error_rate: ErrorRateSli | None = Field(
        default=None, description="Shortcut: error rate of model calls from the guide's counters."
    )
    latency: LatencySli | None = Field(
        default=None, description="Shortcut: share of model calls slower than a latency threshold."
    )
    plugin: Annotated[dict, AfterValidator(_refuse_sli_plugin)] | None = Field(
        default=None,
        description="Sloth SLI plugins are Go code modelmon cannot run; listed so the error can say so.",
    )

    def kinds(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


# --- Alerting -------------------------------------------------------------------


class AlertOverrides(Spec):
    """Sloth's page_alert / ticket_alert block."""

    disable: bool = Field(default=False, description="Generate no alert of this severity.")
    labels: AlertLabels = Field(
        default={},
        description="Labels added to this severity's alerts (they win over every other label, "
        "so severity can be renamed for an existing Alertmanager).",
    )
    annotations: Annotations = Field(default={}, description="Annotations added to this severity's alerts.")


class ThresholdAlert(Spec):
    """The error-rate / availability threshold alerts (the guide's panel bands as alerts)."""

    disable: bool = Field(default=False, description="Generate no threshold alerts for this SLO.")
    name: Annotated[str, AfterValidator(_alert_name)] | None = Field(
        default=None,
        description="Alert name; defaults to <alert_prefix><SloName>High (error rate) or ...Low (availability).",
    )
    # A 5-minute blip keeps the 5m ratio across a band for up to 10 minutes (the blip, then the
    # window it leaves): a shorter `for` turns every blip into an alert (a generated test proves it).
    for_: AlertFor = Field(
        default="10m",
        alias="for",
        description="How long the threshold must be crossed before the alert fires; the default 10m lets "
        "a blip of up to 5 minutes pass (the outage alert pages on real outages within minutes).",
    )
    labels: AlertLabels = Field(default={}, description="Extra labels on the threshold alerts.")
    annotations: Annotations = Field(default={}, description="Extra annotations.")


class OutageAlert(Spec):
    """The fast page: most calls of a model fail (or are slow) right now, whatever the budget."""

    disable: bool | None = Field(
        default=None,
        description="Generate no outage alert for this SLO. Default: as page_alert.disable (it is a page).",
    )
    name: Annotated[str, AfterValidator(_alert_name)] | None = Field(
        default=None, description="Alert name; defaults to <alert_prefix><SloName>Outage."
    )
    # Burn-rate pages need the long window to fill: a 99% SLO pages on its 1h/5m pair after
    # about 9 minutes of total failure, a 95% one after 44. Above a quarter of bad events
    # over 5 minutes, a full outage pages in under 2 minutes at a 15s scrape, while a
    # 5-minute blip of 20% errors stays below it.
    above: Percent = Field(
        default=Decimal(25),
        description="Share (%) of bad events (errors, or slow calls for latency) over the last 5m above which "
        "the alert pages.",
    )
    for_: AlertFor = Field(
        default="0m", alias="for", description="How long the share must stay above before the alert fires."
    )
    labels: AlertLabels = Field(default={}, description="Extra labels on the alert.")
    annotations: Annotations = Field(default={}, description="Extra annotations.")


AlertName = Annotated[str, AfterValidator(_alert_name)]


class BudgetAlert(Spec):
    """The "SLA violated" alert: the error budget of the period is spent."""

    disable: bool | None = Field(
        default=None,
        description="Generate no budget-exhausted alert for this SLO. Default: as page_alert.disable (it is "
        "critical): an SLO without pages, as Sloth's with both page_alert and ticket_alert disabled, has no alert.",
    )
    name: Annotated[str, AfterValidator(_alert_name)] | None = Field(
        default=None, description="Alert name; defaults to <alert_prefix><SloName>BudgetExhausted."
    )
    for_: AlertFor = Field(
        default="0m", alias="for", description="How long the budget must stay spent before the alert fires."
    )
    labels: AlertLabels = Field(default={}, description="Extra labels on the alert.")
    annotations: Annotations = Field(default={}, description="Extra annotations.")


class BurnWindow(Spec):
    """One multi-window burn-rate alert: both windows must burn faster than the factor."""

    severity: Literal["page", "ticket"] = Field(description="page (critical) or ticket (warning).")
    long: Duration = Field(description="Long window: the alert's precision.")
    short: Duration = Field(description="Short window: stops the alert soon after recovery.")
    budget_percent: BudgetPercent = Field(
        description="Share of the period's error budget that, burnt within the long window, should alert. "
        "The burn-rate factor is derived: budget_percent/100 x period / long."
    )
    for_: AlertFor = Field(
        default="0m",
        alias="for",
        description="How long both windows must burn before the alert fires; the short window already "
        "guards against blips, as in the SRE workbook and Sloth.",
    )


class Alerting(Spec):
    """Sloth's alerting block, plus threshold alerts and burn-rate windows."""

    name: Annotated[str, AfterValidator(_alert_name)] | None = Field(
        default=None,
        description="Burn-rate alert name; defaults to <alert_prefix><SloName>BudgetBurn.",
    )
    labels: AlertLabels = Field(default={}, description="Labels on every alert of this SLO.")
    annotations: Annotations = Field(
        default={},
        description="Annotations on every alert of this SLO. Go templates may use $labels.NAME, $value "
        "and $value | humanizePercentage (what the generated tests can render).",
    )
    page_alert: AlertOverrides = Field(
        default_factory=AlertOverrides, description="The fast-burn alerts (severity critical)."
    )
    ticket_alert: AlertOverrides = Field(
        default_factory=AlertOverrides, description="The slow-burn alerts (severity warning)."
    )
    threshold_alert: ThresholdAlert = Field(
        default_factory=ThresholdAlert,
        description="Threshold alerts of availability and error_rate SLIs.",
    )
    budget_alert: BudgetAlert = Field(
        default_factory=BudgetAlert,
        description="Critical alert when the period's error budget is spent (the SLA is violated).",
    )
    outage_alert: OutageAlert = Field(
        default_factory=OutageAlert,
        description="Critical alert when a large share of calls fails right now (the fast page).",
    )
    windows: list[BurnWindow] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_WINDOWS,
        description="Burn-rate windows. Default: the SRE workbook's 1h/5m (2% of budget) and 6h/30m (5%) "
        "pages, 1d/2h (10%) and 3d/6h (10%) tickets.",
    )

    def disabled(self, block: OutageAlert | BudgetAlert) -> bool:
        """Whether the outage or budget alert is off: as it says, else as the pages are."""
        return block.disable if block.disable is not None else self.page_alert.disable


# --- Dashboard ----------------------------------------------------------------------


def _regex(value: str) -> str:
    if problem := promregex.problem(value):
        raise _fail("regex", "is not a regular expression Prometheus accepts (RE2 syntax): {reason}", reason=problem)
    return value


class Family(Spec):
    """A model family, shown as one gauge: its share of all requests."""

    name: Annotated[str, AfterValidator(_non_empty)] = Field(
        description="Family name; the gauge reads '<name> Models %'."
    )
    pattern: Annotated[str, AfterValidator(_regex)] = Field(
        description="Regular expression matched against the whole `model` label (PromQL =~, RE2 syntax). "
        "(?i) ignores case; (.*/)? accepts provider prefixes such as openai/."
    )


# The guide's five families. Its patterns (claude.*, gpt.*, .*gemini.*, ...) miss
# real names such as anthropic/claude-3-haiku, openai/gpt-4.1 or
# meta-llama/Llama-3.1-70B-Instruct, so these keep the meaning and accept provider
# prefixes and capitals.
DEFAULT_FAMILIES = (
    {"name": "Claude", "pattern": "(?i)(.*/)?claude.*"},
    {"name": "GPT", "pattern": "(?i)(.*/)?gpt.*"},
    {"name": "Gemini", "pattern": "(?i).*gemini.*"},
    {"name": "Llama", "pattern": "(?i).*llama.*"},
    {"name": "Mistral", "pattern": "(?i).*(mistral|mixtral).*"},
)


class FamilyThresholds(Spec):
    """Colours of the family gauges (the guide: red below 50, yellow to 80, green above)."""

    yellow_from: Percent = Field(default=Decimal(50), description="Share (%) from which a gauge turns yellow.")
    green_from: Percent = Field(default=Decimal(80), description="Share (%) from which a gauge turns green.")


class Dashboard(Spec):
    """The Grafana dashboard generated for this file's service."""

    title: Annotated[str, AfterValidator(_non_empty)] = Field(
        default="Models Monitoring", description="Dashboard title, as listed under Dashboards."
    )
    uid: Annotated[str, AfterValidator(_slo_name)] = Field(
        default="models-monitoring",
        description="Stable dashboard uid (links and provisioning rely on it); "
        "the file is grafana/dashboards/<uid>.json.",
    )
    families: list[Family] = Field(
        default=[dict(f) for f in DEFAULT_FAMILIES],
        validate_default=True,
        min_length=1,
        max_length=MAX_FAMILIES,
        description="Model families shown as share-of-requests gauges; defaults to the guide's five.",
    )
    family_thresholds: FamilyThresholds = Field(
        default_factory=FamilyThresholds, description="Gauge colour bands of the family shares."
    )


# --- Notifications -------------------------------------------------------------------
#
# Secrets never go into the spec or the generated alertmanager.yml: receivers name
# the files Alertmanager reads them from at run time (the *_file fields below are
# the ones Debian's Alertmanager 0.25 and current releases both know).


def _absolute_path(value: str) -> str:
    # Not echoed: what was pasted here instead of a path may be the secret itself.
    if not value.startswith("/") or any(ord(c) < 32 for c in value):
        raise _fail(
            "path",
            "must be the absolute path of the file Alertmanager reads the secret from, e.g. /etc/alertmanager/"
            "secrets/key (the value given is not shown: it may be the secret itself)",
        )
    return value


def _no_template(value: str) -> str:
    # Alertmanager expands Go templates in these fields for every notification. Not echoed:
    # a webhook URL comes here too.
    return _refuse_go_template(value, "Alertmanager would run it as a Go template for every notification", shown=False)


# Query parameters that carry secrets in webhook URLs (Slack, Teams, Azure Functions, signed URLs).
_SECRET_PARAMETER = re.compile(r"(?i)token|key|secret|passw|auth|sig|code|credential")


def _webhook_url(value: str) -> str:
    # Never echoed whole: the URL may carry a secret; the errors name only the part at fault.
    parts = _web_address(
        value,
        shown=False,
        credentials="alertmanager.yml; put a bearer token in a file and name it in credentials_file",
    )
    if parts.fragment:
        raise _fail("secret", "has a #fragment, which webhooks do not use and tokens hide in; remove it")
    secret = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAMETER.search(name)]
    if secret:
        raise _fail(
            "secret",
            "has a query parameter that looks like a secret ({names}): it would be written into alertmanager.yml; "
            "send it as a bearer token from credentials_file, or give the receiver a URL without it",
            names=", ".join(sorted(set(secret))),
        )
    return _no_template(value)


NotificationText = Annotated[str, AfterValidator(_non_empty), AfterValidator(_no_template)]


def _secret_path_text(value: object) -> object:
    # A number or list pasted here would be echoed by the type error: refused without it.
    if not isinstance(value, str):
        raise _fail(
            "path",
            "must be the absolute path of the file Alertmanager reads the secret from (the value "
            "given is not shown: it may be the secret itself)",
        )
    return value


SecretFile = Annotated[str, BeforeValidator(_secret_path_text), AfterValidator(_absolute_path)]


class WebhookReceiver(Spec):
    """A generic webhook (Alertmanager's JSON payload)."""

    url: Annotated[str, AfterValidator(_webhook_url)] = Field(
        description="Where notifications are POSTed (no credentials or tokens in it: they belong in credentials_file)."
    )
    credentials_file: SecretFile | None = Field(
        default=None, description="File holding a bearer token sent with each notification."
    )


class SlackReceiver(Spec):
    """A Slack incoming webhook."""

    api_url_file: SecretFile = Field(description="File holding the Slack webhook URL (a secret).")
    channel: NotificationText = Field(description="Channel, e.g. #ml-alerts.")


class EmailReceiver(Spec):
    """Email through an SMTP server."""

    to: NotificationText = Field(description="Recipient address(es), comma-separated.")
    from_: NotificationText = Field(alias="from", description="Sender address.")
    smarthost: NotificationText = Field(description="SMTP server as host:port.")
    auth_username: NotificationText | None = Field(default=None, description="SMTP user name.")
    auth_password_file: SecretFile | None = Field(default=None, description="File holding the SMTP password.")


class PagerDutyReceiver(Spec):
    """PagerDuty Events API v2."""

    routing_key_file: SecretFile = Field(description="File holding the integration's routing key (a secret).")


class Receiver(Spec):
    """Where notifications go: a name and exactly one kind."""

    name: Annotated[str, AfterValidator(_slo_name)] = Field(description="Receiver name, unique across files.")
    webhook: WebhookReceiver | None = Field(default=None, description="Generic webhook.")
    slack: SlackReceiver | None = Field(default=None, description="Slack.")
    email: EmailReceiver | None = Field(default=None, description="Email.")
    pagerduty: PagerDutyReceiver | None = Field(default=None, description="PagerDuty.")

    def kinds(self) -> list[str]:
        return [k for k in ("webhook", "slack", "email", "pagerduty") if getattr(self, k) is not None]


class RouteOverride(Spec):
    """Different receivers for some alerts of this service (first match wins)."""

    match: dict[LabelName, Annotated[str, AfterValidator(_no_template)]] = Field(
        min_length=1, description="Label values the alert must have, e.g. {team: search} or {slo: latency}."
    )
    page: str | None = Field(default=None, description="Receiver of matching critical alerts.")
    ticket: str | None = Field(default=None, description="Receiver of matching warning alerts.")


class Notifications(Spec):
    """Alertmanager routing of this service's alerts."""

    receivers: list[Receiver] = Field(min_length=1, description="Receivers this service uses.")
    page: str = Field(description="Receiver of pages (severity critical).")
    ticket: str = Field(description="Receiver of tickets (severity warning).")
    routes: list[RouteOverride] = Field(default=[], description="Per-team or per-SLO overrides, in order.")
    group_by: GroupBy | None = Field(
        default=None,
        description="Labels one notification groups by. Defaults to alertname, service, slo and every "
        "label the file's SLOs are grouped by (model for the shortcuts): one message per alert and group.",
    )
    group_wait: Duration = Field(default="30s", description="Wait before the first notification of a group.")
    group_interval: Duration = Field(default="5m", description="Wait before notifying about new alerts of a group.")
    repeat_interval: Duration = Field(default="4h", description="Wait before repeating a still-firing notification.")


# --- Runbooks ----------------------------------------------------------------------


def _team_markdown(value: str) -> str:
    if problem := markup.link_problem(value):
        raise _fail("link", "{problem}", problem=problem)
    return value


TeamMarkdown = Annotated[str, AfterValidator(_team_markdown)]


class Runbook(Spec):
    """The team's own words for the runbook pages of this SLO's alerts (markdown).

    Each text is appended to the generated section of the same name on every page. Markdown
    formatting stays; raw HTML is shown as text, and links must be http:, https:, mailto: or
    relative (the pages are a web site: nothing in a spec runs in its readers' browsers).
    """

    meaning: TeamMarkdown | None = Field(
        default=None, description="What the SLO stands for, in the team's words: which product features it covers."
    )
    impact: TeamMarkdown | None = Field(
        default=None, description="Who notices when the SLO burns: users, features, customers, contracts."
    )
    diagnosis: TeamMarkdown | None = Field(
        default=None, description="Team-specific checks: logs, gateway consoles, deploy history, queries."
    )
    mitigation: TeamMarkdown | None = Field(
        default=None, description="Team-specific steps: where failover is configured, who to call, escalation."
    )


# --- Sloth SLO plugins ----------------------------------------------------------------


class SlothPlugin(Spec):
    """One plugin of a Sloth v0.16 chain. modelmon runs no Go code: it honours the plugins whose
    work it does itself or that change nothing in the rules, maps the budget-exhausted alert onto
    its own, and refuses the rest by name (modelmon/formats/sloth.py holds which is which)."""

    id: Annotated[str, AfterValidator(_non_empty)] = Field(description="The plugin, e.g. sloth.dev/core/debug/v1.")
    priority: int = Field(default=0, description="Sloth's order of the chain (lowest first).")
    config: dict = Field(default={}, description="The plugin's configuration.")


class SlothPlugins(Spec):
    """Sloth's `slo_plugins` (a file's) or `plugins` (an SLO's) block."""

    override_previous: bool = Field(
        default=False,
        alias="overridePrevious",
        description="Replace the chain before this one (Sloth's default chain, or the file's) instead of adding to it.",
    )
    chain: list[SlothPlugin] = Field(default=[], max_length=MAX_WINDOWS, description="The plugins.")


# --- SLOs and files ----------------------------------------------------------------


class Slo(Spec):
    """One service level objective."""

    name: Annotated[str, AfterValidator(_slo_name)] = Field(description="SLO name, unique in its file.")
    objective: Percent = Field(description="Target percentage of good events over the period, e.g. 99.9.")
    description: str = Field(default="", description="What the SLO promises, in a sentence.")
    period: Period = Field(default="30d", description="The SLO period; burn-rate factors derive from it.")
    labels: Labels = Field(default={}, description="Labels on this SLO's rules and alerts.")
    sli: Sli = Field(description="How the error ratio is measured.")
    alerting: Alerting = Field(default_factory=Alerting, description="Which alerts are generated, and how.")
    runbook: Runbook = Field(
        default_factory=Runbook,
        description="Text added to the runbook pages of this SLO's alerts, after the generated text.",
    )
    plugins: SlothPlugins | None = Field(default=None, description="Sloth SLO plugins of this SLO.")


class SloFile(Spec):
    """One file under slos/: the SLOs of one service."""

    version: Literal["prometheus/v1", "modelmon/v1"] = Field(
        description="prometheus/v1 (Sloth's format, accepted unchanged) or modelmon/v1."
    )
    service: Annotated[str, AfterValidator(_slo_name)] = Field(
        description="Service name; rules go to rules/<service>.yml. Unique across files."
    )
    labels: Labels = Field(default={}, description="Labels on every rule and alert of the file.")
    alert_prefix: Annotated[str, AfterValidator(_alert_name)] | None = Field(
        default=None, description="Prefix of default alert names; defaults to the service in CamelCase."
    )
    runbook_base_url: WebUrl = Field(
        default="http://localhost:8001/runbooks",
        description="Where the runbook site is served; each alert links to <base>/<AlertName>/.",
    )
    grafana_url: WebUrl = Field(
        default="http://localhost:3000",
        description="Where Grafana is served; alerts, notifications and runbooks link to the dashboard there.",
    )
    scrape_interval: Duration = Field(
        default="1m",
        description="Scrape interval of the SLI's series; every window must be at least twice as long.",
    )
    slo_plugins: SlothPlugins | None = Field(default=None, description="Sloth SLO plugins of every SLO of the file.")
    compatibility: Literal["sloth"] | None = Field(
        default=None,
        description="sloth: write Sloth's names too, so Sloth's dashboards, its UI and routes on its labels keep "
        "working: sloth_id, sloth_service and sloth_slo on every series of an SLO, sloth_window on its error ratios "
        "and burn rates, sloth_severity (page, ticket) on the burn-rate alerts, the sloth_slo_info metric, an error "
        "ratio for every window of the SLO's burn-rate set even where its alerts are off, and windows named as "
        "Prometheus writes them (slo:sli_error:ratio_rate4w for 28d).",
    )
    slos: list[Slo] = Field(min_length=1, max_length=MAX_SLOS_PER_FILE, description="The SLOs of this service.")
    # The form the file was written in, when another than `version` says (Sloth's resource, OpenSLO):
    # Sloth's names state it (sloth_spec). Set by the loader, not by a spec.
    _form: str | None = PrivateAttr(default=None)
    notifications: Notifications | None = Field(
        default=None,
        description="Alertmanager routes and receivers of this service (alertmanager/alertmanager.yml).",
    )
    dashboard: Dashboard | None = Field(
        default=None,
        description="Generate the Grafana dashboard of this service: the guide's panels plus one row per SLO. "
        "Panel thresholds of error rate and availability come from this file's SLOs.",
    )


def json_schema() -> dict:
    """The JSON Schema of a spec file, for editors (yaml-language-server) and docs."""
    schema = SloFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelmon SLO file"
    return schema
