"""The part of Prometheus' Go alert templates that modelmon can render itself.

promtool compares annotations exactly, so a generated test must know what each
annotation expands to. Annotations may therefore use only what is rendered here:
`{{ $labels.NAME }}`, `{{ $labels.NAME | urlquery }}`, `{{ $value }}` and
`{{ $value | humanizePercentage }}`.
"""

from __future__ import annotations

import math
import re
from urllib.parse import quote_plus

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_NAME = r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)"
_LABEL = re.compile(rf"^{_NAME}$")
_QUERY_LABEL = re.compile(rf"^(?:{_NAME}\s*\|\s*urlquery|urlquery\s+{_NAME})$")
_PERCENT = re.compile(r"^(?:\$value\s*\|\s*humanizePercentage|humanizePercentage\s+\$value)$")
SUPPORTED = "{{ $labels.NAME }}, {{ $labels.NAME | urlquery }}, {{ $value }} and {{ $value | humanizePercentage }}"


def unsupported_template(text: str, where: str = "annotations", value: bool = True) -> str | None:
    """Why `text` cannot be rendered by modelmon (as Prometheus would) in `where`, or None when it can;
    `value`: whether $value may be used there."""
    for action in _ACTION.findall(text):
        if not value and "$value" in action:
            return f"template action {{{{ {action} }}}} is not allowed in {where}: $value changes every evaluation"
        if not (_LABEL.match(action) or _QUERY_LABEL.match(action) or action == "$value" or _PERCENT.match(action)):
            supported = SUPPORTED if value else "{{ $labels.NAME }} and {{ $labels.NAME | urlquery }}"
            return f"template action {{{{ {action} }}}} is not supported in {where}; use {supported}"
    if "{{" in _ACTION.sub("", text):
        return f"unclosed template action in {text!r}: '{{{{' starts an action Prometheus expands; it needs '}}}}'"
    return None


def render(text: str, labels: dict[str, str], value: float) -> str:
    """Expand `text` as Prometheus would for an alert with these labels and value."""

    def expand(match: re.Match) -> str:
        action = match.group(1)
        label = _LABEL.match(action)
        if label:
            return labels.get(label.group(1), "")
        query = _QUERY_LABEL.match(action)
        if query:
            return url_query_escape(labels.get(query.group(1) or query.group(2), ""))
        if action == "$value":
            return go_float(value)
        if _PERCENT.match(action):
            return humanize_percentage(value)
        raise ValueError(unsupported_template(match.group(0)))

    return _ACTION.sub(expand, text)


def url_query_escape(text: str) -> str:
    """text/template's urlquery, Go's url.QueryEscape: every byte but letters, digits and
    `-_.~` as %XX (upper case, UTF-8), and a space as '+'."""
    return quote_plus(text, safe="")


def go_float(value: float) -> str:
    """fmt's %v for a float64: shortest round-trip digits, exponent only when very large or small."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def humanize_percentage(value: float) -> str:
    """Prometheus' humanizePercentage: fmt.Sprintf("%.4g%%", v*100)."""
    return "%.4g%%" % (value * 100)
