"""Text people read (alert annotations; later runbooks and notifications), from jinja2 templates."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from modelmon.conventions import SHORT_WINDOW
from modelmon.formatting import hours_text, number, percent

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _alert_environment() -> jinja2.Environment:
    # Square delimiters: alert text carries Prometheus' Go template actions ({{ ... }})
    # that must reach Prometheus untouched.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,  # the package's own templates: not stat()ed again at each of 16,000 renders
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.globals.update(
        number=number,
        percent=percent,
        exhaustion=lambda plan, alert: hours_text(alert.exhaustion_s),
        SHORT_WINDOW=SHORT_WINDOW,
    )
    return env


def alert_text(macro: str, plan, alert) -> str:
    """One annotation line, rendered by the macro of that name in templates/alert_text.j2."""
    module = _alert_environment().get_template("alert_text.j2").module
    return str(getattr(module, macro)(plan, alert)).strip()


def render_file(template: str, **values: object) -> str:
    """A whole file rendered by a template of templates/ with the square delimiters."""
    return _alert_environment().get_template(template).render(**values).lstrip() + "\n"
