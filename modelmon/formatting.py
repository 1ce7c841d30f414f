"""Numbers and names as people and PromQL read them, written the same way by every output."""

from __future__ import annotations

import re
from decimal import Context, Decimal
from functools import lru_cache

_TWELVE_DIGITS = Context(prec=12)


@lru_cache(maxsize=1 << 12)
def number(value: Decimal) -> str:
    """A Decimal as PromQL and YAML read it: 12 significant digits, no exponent, no trailing zeros.
    (Kept by value: equal Decimals, 1.0 and 1.00, read alike here; a thousand SLOs' rules and pages
    ask for the same few hundred thousands of times.)"""
    return format(_TWELVE_DIGITS.plus(value).normalize(), "f")


def percent(ratio: Decimal) -> str:
    """A ratio as a percentage for people: 0.001 -> '0.1%'."""
    return f"{number(ratio * 100)}%"


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^a-zA-Z0-9]+", text) if part)


def hours_text(seconds: Decimal) -> str:
    """A duration for people: '2d2h', '50h' reads worse than '2d 2h'."""
    total_minutes = int((seconds / 60).to_integral_value())
    days, rest = divmod(total_minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or "0m"


def exhaustion_text(seconds: Decimal) -> str:
    """How long a full budget lasts: '2d 2h (50 hours)', or '10h' under a day."""
    hours = seconds / 3600
    if hours < 24:
        return hours_text(seconds)
    return f"{hours_text(seconds)} ({number(round(hours, 1))} hours)"
