"""The test traffic: calls per second on an exact binary grid, the counters they add up to,
and label sets the SLI's own selector accepts.

Traffic rates are multiples of 1/64 per second on a base of 1024 calls per second, so
every counter and rate is exact in binary floating point and the expected values agree
with the engine to the last bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate, chain, repeat

from modelmon import contract, promregex
from modelmon.conventions import MATCHER, unescape
from modelmon.plan import SloPlan

TOTAL_PER_S = 1024.0
ERROR_GRAIN = 64  # error rates are whole multiples of 1/64 per second
REQUEST_KINDS = ("availability", "error_rate")
RECORDED_INPUT_KINDS = ("events", "raw")  # user queries: tests feed the recorded ratios


class TestGenerationError(ValueError):
    """A spec the rules compile from, but for which no test traffic can be built."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.slo = ""  # filled in by the writer, which knows the SLO and service it failed for
        self.service = ""


class TestGenerationErrors(ValueError):
    """Every service's TestGenerationError of one build."""

    def __init__(self, errors: list[TestGenerationError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Phase:
    start: int  # unit of time (minute, unless the scenario says) from which these per-second rates apply
    total: float
    errors: float


@dataclass
class Traffic:
    """The calls one series of labels (one model) receives over the scenario."""

    labels: dict[str, str]
    phases: list[Phase]  # in start order, the first starting at 0
    error_series: bool = True  # False: the backend never created model_errors_total for it

    def counters(self, length: int, unit: int = 60, per_unit: int = 1) -> tuple[list[float], list[float]]:
        """Both counters at every unit (of `unit` seconds) from 0 to `length`, or at every
        1/per_unit of a unit."""
        seconds = unit / per_unit  # exact: the rates are on a binary grid, units are whole or half seconds
        steps = length * per_unit
        # Each step adds the rates of the latest phase started by then (phases are in start order,
        # the first from step 0): the steps each phase covers, then one running sum per counter,
        # added step by step in order as a loop would (the same floats, at C speed).
        starts = [0] + [min(max(phase.start * per_unit, 0), steps) for phase in self.phases[1:]] + [steps]
        covered = [(phase, max(0, starts[k + 1] - starts[k])) for k, phase in enumerate(self.phases)]
        total = accumulate(chain.from_iterable(repeat(p.total * seconds, n) for p, n in covered), initial=0.0)
        errors = accumulate(chain.from_iterable(repeat(p.errors * seconds, n) for p, n in covered), initial=0.0)
        return list(total), list(errors)


def group_key(plan: SloPlan, labels: dict[str, str]) -> tuple[str, ...]:
    """The SLO group a series of `labels` falls in: its values of the group-by labels."""
    return tuple(labels.get(label, "") for label in plan.group_by)


def errors_per_s(ratio: Decimal | float) -> float:
    """The error rate closest to `ratio` of the base traffic, on the exact 1/64 grid."""
    return round(float(ratio) * TOTAL_PER_S * ERROR_GRAIN) / ERROR_GRAIN


# --- Label sets the selector accepts ------------------------------------------------


def _matchers(selector: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of each matcher, values read as PromQL reads them."""
    return [(m.group(1), m.group(2), unescape(m.group(3))) for m in MATCHER.finditer(selector)]


def _accepts(matchers: list[tuple[str, str, str]], label: str, value: str) -> bool:
    for name, op, pattern in matchers:
        if name != label:
            continue
        matched = promregex.full_match(pattern, value) if op in ("=~", "!~") else value == pattern
        if matched != (op in ("=", "=~")):
            return False
    return True


def _guess(pattern: str) -> str:
    """A plain value a simple regex accepts: 'claude.*' -> 'claude', '(gpt|o1).*' -> 'gpt'."""
    text = re.sub(r"\((?:\?:)?([^|()]*)(?:\|[^()]*)?\)", r"\1", pattern)
    text = re.sub(r"\.[*+?]|\^|\$|\[[^\]]*\][*+?]?", "", text)
    return text.replace("\\", "") or "x"


def _candidates(label: str, matchers: list[tuple[str, str, str]]) -> list[str]:
    exact = [p for n, op, p in matchers if n == label and op == "="]
    if exact:
        pool = exact
    else:
        base = list(contract.EXAMPLE_MODELS) if label == contract.MODEL_LABEL else ["a", "b", "c", "d"]
        guesses = [_guess(p) for n, op, p in matchers if n == label and op == "=~"]
        pool = base + [f"{g}{suffix}" for g in guesses for suffix in ("", "-2", "-3", "-4")]
    return list(dict.fromkeys(v for v in pool if _accepts(matchers, label, v)))


def series_labels(plan: SloPlan, count: int) -> list[dict[str, str]]:
    """Up to `count` label sets of distinct SLO groups that the SLI's selector accepts."""
    matchers = _matchers(plan.traffic_selector)
    names = list(plan.group_by)
    if plan.kind not in RECORDED_INPUT_KINDS and contract.MODEL_LABEL not in names:
        names.append(contract.MODEL_LABEL)
    names += [n for n, _, _ in matchers if n not in names]
    choices = {}
    for name in names:
        choices[name] = _candidates(name, matchers)
        if not choices[name]:
            raise TestGenerationError(
                ("sli", plan.kind, "selector"),
                f"no test value for label {name!r} satisfies the selector; use matchers that a plain value can satisfy",
            )
    varying = names[0] if names else None
    sets = []
    for i in range(count if varying in plan.group_by else 1):
        if varying and i >= len(choices[varying]):
            break
        sets.append({n: choices[n][i] if n == varying else choices[n][0] for n in names})
    return sets
