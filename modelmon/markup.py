"""Spec text inside Markdown pages (the runbooks, which mkdocs renders to HTML): shown, never run.

Python-Markdown passes raw HTML through, so a description holding `<img onerror=...>` would
run in the browser of whoever opens the runbook, a backtick in a selector would close its code
span, and a `[link](javascript:...)` would be a link that runs code. Each kind of spec text has
its escape here:

- `text`: plain text (an SLO's description, a family name): HTML and Markdown punctuation
  escaped, on one line;
- `code` and `fenced`: text shown as code (selectors, patterns, queries), in a code span or
  block whose backtick run is longer than any inside it (Markdown escapes HTML in code);
- `team`: the spec's `runbook` texts, which are Markdown by design: its formatting stays, raw
  HTML tags are shown as text (in code too); `link_problem` refuses their links that are not
  web or mail addresses (the spec's validation calls it, so the page never holds one).
"""

from __future__ import annotations

import html
import re

# Characters that format Markdown inside a line, escaped with a backslash (`#`, `-`, `+`, `>`
# and digits with a dot only format at a line's start, where this text never is).
_PUNCTUATION = re.compile(r"([\\`*_\[\]{}])")
_BACKTICKS = re.compile(r"`+")
# `<` opening a tag, a comment, a declaration or an autolink: only then is it HTML.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Link destinations: [text](destination ...) and reference definitions `[name]: destination`.
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)>]*)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S*?)>?(?:\s|$)", re.M)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
SAFE_SCHEMES = ("http", "https", "mailto")


def text(value: str) -> str:
    """Plain text as Markdown shows it, letter for letter: no HTML, no formatting, one line."""
    one_line = " ".join(value.split())
    return _PUNCTUATION.sub(r"\\\1", html.escape(one_line, quote=False))


def code(value: str) -> str:
    """An inline code span holding `value` exactly (on one line)."""
    one_line = " ".join(value.splitlines())
    ticks = "`" * (max((len(run) for run in _BACKTICKS.findall(one_line)), default=0) + 1)
    # A span that starts or ends with a backtick needs a space between it and the delimiters.
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{ticks}{pad}{one_line}{pad}{ticks}"


def fenced(value: str, info: str = "") -> str:
    """A fenced code block holding `value` exactly: its fence is longer than any backtick run inside."""
    ticks = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(value)), default=0) + 1)
    return f"{ticks}{info}\n{value.strip(chr(10))}\n{ticks}"


def team(value: str) -> str:
    """The team's Markdown with every `<` that could open HTML written as `&lt;`, code included:
    Markdown's own idea of where code starts (unclosed or indented fences, backslashes before
    backticks) is too subtle to guess safely, so a `<tag>` inside code shows as `&lt;tag>`."""
    return _TAG_START.sub("&lt;", value)


def link_problem(value: str) -> str | None:
    """Why a link in the team's Markdown may not be on a runbook page (a script, a file), or None.
    Code is judged too: where Markdown sees code is guessed no better than for `team`."""
    for destination in [*_INLINE_LINK.findall(value), *_REFERENCE.findall(value)]:
        # Browsers decode entities and drop control characters and spaces before reading a scheme.
        plain = re.sub(r"[\x00-\x20]", "", html.unescape(destination))
        scheme = _SCHEME.match(plain)
        if scheme and scheme.group(1).lower() not in SAFE_SCHEMES:
            shown = " ".join(destination.split())
            return (
                f"the link to {shown!r} is not allowed on a runbook page: links must be "
                f"{', '.join(s + ':' for s in SAFE_SCHEMES)} or relative"
            )
    return None
