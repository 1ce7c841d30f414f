"""The names and fixed numbers every output shares, in one place (as Sloth's conventions.go).

Record names, label names, the windows the rules are evaluated on and the selectors
that read an SLO's series are decided here; rules, promtool tests, the dashboard,
runbooks, the Alertmanager config and the doctor all read them from here or from the
plan, so a rename cannot leave one output reading a series the rules no longer write.
"""

from __future__ import annotations

import re

# --- Labels ---------------------------------------------------------------------------

SERVICE_LABEL = "service"
SLO_LABEL = "slo"
SEVERITY_LABEL = "severity"
ALERTNAME_LABEL = "alertname"
# A burn-rate alert says which window pair fired.
LONG_WINDOW_LABEL = "long_window"
SHORT_WINDOW_LABEL = "short_window"
# Tells apart shared rates of the same metric read with different selectors.
SELECTOR_LABEL = "sli_selector"
# Labels modelmon writes on every series of an SLO: a spec must not set them.
RESERVED_LABELS = (SERVICE_LABEL, SLO_LABEL, SELECTOR_LABEL)
# Labels modelmon writes on alerts: alert label overrides must not set them either (severity
# they may: Sloth files route on their own severities).
RESERVED_ALERT_LABELS = (ALERTNAME_LABEL, LONG_WINDOW_LABEL, SHORT_WINDOW_LABEL)

# Sloth's own labels, written too when a file says `compatibility: sloth` (Sloth's conventions.go):
# its dashboards, its UI and Alertmanager routes select an SLO's series by them.
SLOTH_ID_LABEL = "sloth_id"  # <service>-<slo>
SLOTH_SERVICE_LABEL = "sloth_service"
SLOTH_SLO_LABEL = "sloth_slo"
SLOTH_WINDOW_LABEL = "sloth_window"  # on each error ratio and the burn rates: the window's record suffix
SLOTH_SEVERITY_LABEL = "sloth_severity"  # page | ticket, on the burn-rate alerts
SLOTH_LABELS = (SLOTH_ID_LABEL, SLOTH_SERVICE_LABEL, SLOTH_SLO_LABEL, SLOTH_WINDOW_LABEL, SLOTH_SEVERITY_LABEL)
# What the info metric says about the rules that wrote it (Sloth's sloth_mode is "cli-gen-prom").
SLOTH_MODE = "modelmon"
SLOTH_MODE_LABEL, SLOTH_OBJECTIVE_LABEL = "sloth_mode", "sloth_objective"
SLOTH_SPEC_LABEL, SLOTH_VERSION_LABEL = "sloth_spec", "sloth_version"
SLOTH_INFO_LABELS = (SLOTH_MODE_LABEL, SLOTH_OBJECTIVE_LABEL, SLOTH_SPEC_LABEL, SLOTH_VERSION_LABEL)
# The Sloth release whose names these are (its info metric's sloth_version): the one the tests
# compare with (tools/versions.toml; a test holds the two together).
SLOTH_NAMES_VERSION = "v0.16.0"

# Alertmanager-facing severities of the two kinds of burn-rate alert.
SEVERITY = {"page": "critical", "ticket": "warning"}

# --- Windows --------------------------------------------------------------------------

# The guide's panels read rates over 5m; the threshold and outage alerts and the current
# burn rate use the same window, so an alert and its panel always show the same number.
SHORT_WINDOW = "5m"
# Windows of 6h and more (the slow page's long window, the tickets' 1d and 3d, the
# period) are averaged from 5-minute rates recorded every 5 minutes ("tiles"), not
# read from raw counters: a 3d window reads 864 tiles instead of 17,280 raw samples
# per series at a 15s scrape. What it costs in meaning: the window's newest 5 to 10
# minutes come from the previous tile, under 3 % of a 6h window. Shorter windows
# (the fast page, the threshold alerts) stay exact raw rates.
DERIVED_FROM_S = 6 * 3600
# A tile is the 5m rate the SLI group records anyway for the threshold alerts and panels.
TILE_WINDOW = SHORT_WINDOW
TILE_INTERVAL = "5m"
# Prometheus' default --query.lookback-delta: an instant query finds a series' newest sample
# only if it is no older than this, so whatever rules read must be written at least this often.
LOOKBACK_DELTA_S = 300
# The long-window averages are read by alerts with instant queries, so they are
# recorded well inside Prometheus' 5m lookback: a slow or missed evaluation never
# makes them vanish for an alert.
LONG_INTERVAL = "1m"
# Coverage is recorded with the tiles: it can only change when a tile lands. Readers look
# back this far, so one slow or missed tile evaluation never makes the budget vanish.
COVERAGE_LOOKBACK = "15m"
# Where a query of the spec, and a signal's query, take their window.
WINDOW = "$window"
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")

# --- Record names ---------------------------------------------------------------------

OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
PERIOD_DAYS_RECORD = "slo:time_period:days"
CURRENT_BURN_RECORD = "slo:current_burn_rate:ratio"
PERIOD_BURN_RECORD = "slo:period_burn_rate:ratio"
BUDGET_REMAINING_RECORD = "slo:period_error_budget_remaining:ratio"
# The share of the period the data covers: on a Prometheus that holds only hours of the
# period, the period's error ratio describes those hours alone, and errors of a short outage
# would read as the whole period's budget spent many times over. The budget is stated against
# the whole period instead: errors so far against the budget of a whole period of the traffic
# seen (period ratio x coverage / budget), so "spent" is said only when it is true.
COVERAGE_RECORD = "slo:period_coverage:ratio"
# One series per SLO, value 1, its labels saying what it is (objective, spec, version): Sloth's UI
# lists SLOs from it, and Sloth's info_labels plugin puts a team's own labels there.
SLOTH_INFO_RECORD = "sloth_slo_info"
SLI_ERROR_PREFIX = "slo:sli_error:ratio_rate"


def sli_error_record(window: str) -> str:
    """The SLO's error ratio over `window`: slo:sli_error:ratio_rate5m."""
    return f"{SLI_ERROR_PREFIX}{window}"


def sloth_id(service: str, slo: str) -> str:
    return f"{service}-{slo}"


def events_record(role: str) -> str:
    """An events SLI's own rates: slo:sli_total_events, slo:sli_error_events."""
    return f"slo:sli_{role}_events"


def record_level(by: tuple[str, ...], metric: str) -> str:
    """Prometheus' level:metric naming: the labels kept, then the metric without _total."""
    return f"{'_'.join(by) or SERVICE_LABEL}:{metric.removesuffix('_total')}"


def rate_record(level: str, window: str) -> str:
    return f"{level}:rate{window}"


def ratio_tile_record(sloth: bool = False) -> str:
    """A raw SLI's 5m error ratio kept every 5 minutes: slo:sli_error:ratio_rate5m_tile, and
    slo:sli_error:ratio_tile5m with Sloth's names, as Sloth's UI takes every
    slo:sli_error:ratio_rate* name for a window (the first name stays for the projects whose
    Prometheus already holds a period of those tiles)."""
    if sloth:
        return f"{SLI_ERROR_PREFIX.replace('ratio_rate', 'ratio_tile')}{TILE_WINDOW}"
    return f"{sli_error_record(TILE_WINDOW)}_tile"


def tile_record(record: str) -> str:
    """The 5m rate `record` kept every 5 minutes: model:model_requests -> model:model_requests:rate5m_tile."""
    return f"{record}:rate{TILE_WINDOW}_tile"


def clock_record(tile: str) -> str:
    """Each tile's own timestamp as its value: min_over_time of it is the oldest tile of a window."""
    return f"{tile}_timestamp"


# --- Rule groups ----------------------------------------------------------------------


def sli_group(service: str) -> str:
    """The shared rates and each SLO's short-window ratios (evaluated at the global interval)."""
    return f"{service}-sli"


def slo_sli_group(service: str, slo: str) -> str:
    """One SLO's short-window ratios, when Sloth's rule_intervals plugin gives them an interval of
    their own (the shared rates they divide stay in sli_group). Prometheus runs each group at its
    own phase, so readers take the newest ratio within the lookback (checks.READ_BY_OTHERS)."""
    return f"{service}-{slo}-sli"


def tiles_group(service: str) -> str:
    """The 5-minute tiles and the period's coverage, every TILE_INTERVAL."""
    return f"{service}-sli-tiles"


def long_group(service: str) -> str:
    """Windows of 6h and more, averaged from the tiles, every LONG_INTERVAL."""
    return f"{service}-sli-long"


def meta_group(service: str, slo: str) -> str:
    return f"{service}-{slo}-meta"


def alerts_group(service: str, slo: str) -> str:
    return f"{service}-{slo}-alerts"


# --- Selectors ------------------------------------------------------------------------

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# One PromQL label matcher: name, operator, double-quoted value with its escapes.
# A raw line break ends a PromQL string: it is written \n.
_MATCHER = r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\\n]|\\.)*)"\s*'
MATCHER = re.compile(rf"{_MATCHER},?")
# A comma-separated list of them, e.g. model=~"claude.*",model!="gpt-4o".
SELECTOR = re.compile(rf"^{_MATCHER}(?:,{_MATCHER})*,?\s*$")


def escape(value: str) -> str:
    """A label value inside PromQL's double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# The escapes of a PromQL double-quoted string (Go's): single characters, \xHH and \ooo bytes,
# \uHHHH and \UHHHHHHHH code points.
_ESCAPE = re.compile(r'\\(?:([abfnrtv\\"\'])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))')
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def bad_escape(value: str) -> str | None:
    """The first backslash sequence of a PromQL double-quoted string that PromQL refuses: one it
    does not know (\\q), or a code point that is no character (\\uD800, \\U00110000)."""
    for match in _ESCAPE.finditer(value.replace("\\\\", "")):
        point = match.group(4) or match.group(5)
        if point and (0xD800 <= int(point, 16) <= 0xDFFF or int(point, 16) > 0x10FFFF):
            return match.group(0)
    rest = _ESCAPE.sub("", value.replace("\\\\", ""))
    at = rest.find("\\")
    return rest[at : at + 2] if at >= 0 else None


def unescape(value: str) -> str:
    """A label value as written inside PromQL's double quotes, back to the value PromQL reads."""
    out, pos = bytearray(), 0
    for m in _ESCAPE.finditer(value):
        out += value[pos : m.start()].encode()
        simple, byte, octal, short, long = m.groups()
        if simple:
            out += _SIMPLE.get(simple, simple).encode()
        elif byte or octal:
            out.append(int(byte, 16) if byte else int(octal, 8))
        else:
            out += chr(int(short or long, 16)).encode()
        pos = m.end()
    out += value[pos:].encode()
    return out.decode("utf-8", errors="replace")


def matchers(labels: dict[str, str], *extra: str) -> str:
    """A PromQL label selector for exactly these label values, then `extra` matchers as written."""
    return "{" + ",".join([*(f'{k}="{escape(v)}"' for k, v in labels.items()), *extra]) + "}"


def slo_selector(service: str, slo: str, *extra: str) -> str:
    """Every series of one SLO: {service="...",slo="..."} and `extra` matchers."""
    return matchers({SERVICE_LABEL: service, SLO_LABEL: slo}, *extra)
