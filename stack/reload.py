"""`make reload`: a changed spec reaches the running `make up` stack with one command.

Rebuilds the project (`modelmon build`), derives the local Alertmanager configuration
again from the regenerated one, then asks Prometheus and Alertmanager to reload
(POST /-/reload) and says whether each accepted it.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

from modelmon import cli
from stack import processes
from stack.config import REPO
from stack.up import read_state, write_alertmanager_config


def post_reload(name: str, url: str) -> str | None:
    """None when `name` reloaded, else why not, in its own words."""
    request = urllib.request.Request(f"{url}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60):
            return None
    except urllib.error.HTTPError as err:
        return f"{name} refused the reload ({err.code}): {err.read().decode(errors='replace').strip()}"
    except (urllib.error.URLError, OSError) as err:
        return f"{name} at {url} cannot be reached: {err}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make reload", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run", help="the run folder of `make up` (.run/)")
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    state = read_state(run_dir)
    if state is None:
        print(
            f"no stack of `make up` is running with its data under {run_dir}: start one with `make up`", file=sys.stderr
        )
        return 1
    root = Path(state["root"])
    built = cli.main(["--root", str(root), "build"])
    if built != 0:
        print("the build failed: the running stack keeps its rules and routes", file=sys.stderr)
        return built
    write_alertmanager_config(run_dir, root, state["receiver"])
    failures = 0
    for name in ("prometheus", "alertmanager"):
        error = post_reload(name.capitalize(), state[name])
        if error is None:
            print(f"{name:13} reloaded ({state[name]})")
        else:
            print(error, file=sys.stderr)
            failures += 1
    if failures == 0:
        groups = processes.get_json(f"{state['prometheus']}/api/v1/rules")["data"]["groups"]
        print(f"Prometheus runs {len(groups)} rule groups ({sum(len(g['rules']) for g in groups)} rules)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
