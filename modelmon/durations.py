"""Prometheus durations (`5m`, `1h30m`, `30d`) as whole seconds."""

from __future__ import annotations

import functools
import re

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PATTERN = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# Rule names and labels spell windows the way Sloth does (1d, 3d, 30d), never in weeks or years.
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@functools.lru_cache(maxsize=4096)  # the test model reads a few windows hundreds of thousands of times
def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration; ValueError naming the text when it is not one."""
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 30d")
    return sum(int(n) * size for n, (_, size) in zip(match.groups(), _UNITS, strict=True) if n)


def format_duration(seconds: int) -> str:
    """The shortest d/h/m/s spelling: 86400 -> '1d', 5400 -> '1h30m', 0 -> '0s' (a `for` of none)."""
    if seconds < 0:
        raise ValueError(f"durations are not negative (got {seconds}s)")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def prometheus_duration(seconds: int) -> str:
    """A duration as Prometheus writes it (model.Duration.String): years and weeks only when they
    divide it exactly, then d/h/m/s: 7d -> '1w', 28d -> '4w', 30d -> '30d'. Sloth names its
    windows so (slo:sli_error:ratio_rate4w), and so does modelmon with `compatibility: sloth`."""
    if seconds <= 0:
        return format_duration(seconds)
    for unit, size in _UNITS[:2]:  # y, w
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return format_duration(seconds)
