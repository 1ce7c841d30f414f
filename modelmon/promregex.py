"""Prometheus' regular expressions, judged as Prometheus judges them: with RE2.

Prometheus matches `=~` and `!~` with Go's regexp, RE2's dialect, anchored at both ends.
Python's `re` is another dialect (it refuses `\\pL`, accepts backreferences) and backtracks:
`(.*)*X` takes it exponential time on a long value. RE2 accepts what Go accepts, up to
details promtool's check of the generated queries catches, and matches in time linear in
the value, so a spec cannot hang the compiler through a selector or a family pattern.
"""

from __future__ import annotations

import functools

import re2

from modelmon.limits import MAX_REGEX_CHARS

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr


class RegexError(ValueError):
    """A pattern Prometheus would refuse, with RE2's reason."""


@functools.lru_cache(maxsize=1024)
def compile_anchored(pattern: str) -> re2._Regexp:
    """The pattern as Prometheus matches it (whole value), or RegexError saying why not."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise RegexError(f"is longer than {MAX_REGEX_CHARS} characters")
    try:
        re2.compile(pattern, _OPTIONS)
        return re2.compile(f"^(?:{pattern})$", _OPTIONS)
    except re2.error as err:
        reason = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        raise RegexError(reason) from None


def problem(pattern: str) -> str | None:
    """Why Prometheus would refuse `pattern`, or None."""
    try:
        compile_anchored(pattern)
    except RegexError as err:
        return str(err)
    return None


def full_match(pattern: str, value: str) -> bool:
    """Whether `value` matches as with PromQL's =~ (the whole value)."""
    return compile_anchored(pattern).search(value) is not None
