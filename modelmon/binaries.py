"""Finding the real tools the build runs (promtool, amtool, vmalert): `$MODELMON_<TOOL>`, else PATH."""

from __future__ import annotations

import os
import shutil


def find(command: str, variable: str, missing: type[Exception], hint: str) -> str:
    """The binary `$variable` names (which must be an executable file), else `command` on PATH;
    `missing(...)` saying what to install when there is none."""
    configured = os.environ.get(variable)
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise missing(f"{variable}={configured} is not an executable file")
        return configured
    found = shutil.which(command)
    if not found:
        raise missing(hint)
    return found
