"""One model call as the backend records it, and the validation of calls sent over HTTP.

A body is validated whole before anything is recorded, so a bad field anywhere in a
batch leaves every metric untouched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Long enough for the longest real names (provider/org/model-size-variant-date),
# short enough that a pasted prompt or a stack trace cannot become a label value.
MAX_MODEL_NAME = 128
# Letters, digits and the separators providers use: "openai/gpt-4.1", "llama3:8b",
# "claude-3-5-sonnet@20240620", "Llama-3.1-70B-Instruct". No spaces, quotes or
# control characters, which would only ever come from a bug on the caller's side.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
# An hour: no model call takes longer; anything above is a unit mistake (seconds
# sent as microseconds, a timestamp sent as a duration).
MAX_LATENCY_MS = 3_600_000.0
# Larger than any context window by two orders of magnitude.
MAX_TOKENS = 10_000_000
# One request may carry a batch; the bound keeps a single body cheap to validate.
MAX_CALLS_PER_REQUEST = 1000

_FIELDS = ("model", "latency_ms", "tokens", "error")


@dataclass(frozen=True)
class Call:
    model: str
    latency_ms: float
    tokens: int = 0
    error: bool = False


class InvalidCalls(ValueError):
    """Every problem found in a body, each naming its field."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _shown(value: object) -> str:
    """A value for an error message, cut short so a huge input is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def normalise_model(raw: object) -> str:
    """The label value for a model name, or ValueError saying what is wrong with it."""
    if not isinstance(raw, str):
        raise ValueError(f"must be a string (got {_shown(raw)})")
    name = raw.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_MODEL_NAME:
        raise ValueError(f"must be at most {MAX_MODEL_NAME} characters (got {len(name)})")
    if not _MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"must start with a letter or digit and hold only letters, digits and . _ : / @ + - (got {_shown(name)})"
        )
    return name


def _is_number(value: object) -> bool:
    # bool is an int in Python; `true` for a latency is a caller's bug, not 1 ms.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_call(raw: object, where: str, problems: list[str]) -> Call | None:
    if not isinstance(raw, dict):
        problems.append(f"{where or 'body'}: must be a JSON object with {', '.join(_FIELDS)} (got {_shown(raw)})")
        return None
    before = len(problems)
    prefix = f"{where}." if where else ""
    for key in sorted(set(raw) - set(_FIELDS)):
        problems.append(f"{prefix}{key}: unknown field; the fields are {', '.join(_FIELDS)}")

    model = None
    if "model" not in raw:
        problems.append(f"{prefix}model: is required")
    else:
        try:
            model = normalise_model(raw["model"])
        except ValueError as exc:
            problems.append(f"{prefix}model: {exc}")

    latency = raw.get("latency_ms")
    if "latency_ms" not in raw:
        problems.append(f"{prefix}latency_ms: is required")
    elif not (_is_number(latency) and math.isfinite(latency) and 0 <= latency <= MAX_LATENCY_MS):
        problems.append(f"{prefix}latency_ms: must be a number from 0 to {MAX_LATENCY_MS:.0f} (got {_shown(latency)})")

    tokens = raw.get("tokens", 0)
    if not (isinstance(tokens, int) and not isinstance(tokens, bool) and 0 <= tokens <= MAX_TOKENS):
        problems.append(f"{prefix}tokens: must be a whole number from 0 to {MAX_TOKENS} (got {_shown(tokens)})")

    error = raw.get("error", False)
    if not isinstance(error, bool):
        problems.append(f"{prefix}error: must be true or false (got {_shown(error)})")

    if len(problems) > before:
        return None
    return Call(model=model, latency_ms=float(latency), tokens=tokens, error=error)


def parse_calls(body: object) -> list[Call]:
    """The calls of a decoded JSON body: one call object, or a list of them.

    Raises InvalidCalls listing every problem; then none of the calls may be recorded.
    """
    if isinstance(body, list):
        if not body:
            raise InvalidCalls(["body: the list of calls is empty"])
        if len(body) > MAX_CALLS_PER_REQUEST:
            raise InvalidCalls([f"body: at most {MAX_CALLS_PER_REQUEST} calls per request (got {len(body)})"])
        items = [(f"[{i}]", raw) for i, raw in enumerate(body)]
    else:
        items = [("", body)]
    problems: list[str] = []
    calls = [_parse_call(raw, where, problems) for where, raw in items]
    if problems:
        raise InvalidCalls(problems)
    return [call for call in calls if call is not None]
