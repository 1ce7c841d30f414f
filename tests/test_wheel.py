"""modelmon as a tool: the wheel, installed into a fresh virtual environment outside the
checkout, used in a repository that holds nothing but one spec file.

The wheel must hold the one import package `modelmon` with its templates (no `backend`,
`stack` or other generic names in a user's site-packages); a plain install (no extras,
at the versions of constraints.txt) must validate files by path, build, and write only
what that repository needs, with headers naming `modelmon build`; the real promtool
then checks the rules and runs the tests the build wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from modelmon import promtool

REPO = Path(__file__).resolve().parent.parent
# What a wheel build reads; the rest of the checkout stays out of the copy it is built from,
# and the build's own build/ and *.egg-info stay out of the checkout.
SOURCE_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", ".modelmon*", "site", ".run", "secrets", "__pycache__", ".*_cache"
)

SPEC = """\
    version: modelmon/v1
    service: checkout
    alert_prefix: Checkout
    slos:
      - name: availability
        objective: 99.5
        sli:
          availability: {}
"""
WITH_DASHBOARD = SPEC.replace("    slos:\n", "    dashboard: {uid: checkout, title: Checkout}\n    slos:\n")
# validate and build run one compile: a page window no full outage fires is refused by both.
UNFIREABLE = SPEC + textwrap.indent(
    textwrap.dedent("""\
        alerting:
          windows:
            - {severity: page, long: 1h, short: 5m, budget_percent: 100}
    """),
    " " * 8,
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtual environment holding the wheel built from this checkout."""
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    shutil.copytree(REPO, source, ignore=SOURCE_IGNORED)
    dist = scratch / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(source)], check=True, timeout=300)
    (wheel,) = dist.glob("modelmon-*.whl")
    check_contents(wheel)
    venv = scratch / "venv"
    # Without a pip of its own (ensurepip alone takes seconds): this pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = [*pip, "--python", str(venv / "bin" / "python"), "install", "-c", str(REPO / "constraints.txt")]
    subprocess.run([*install, str(wheel)], check=True, timeout=600)
    return venv / "bin"


def check_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"modelmon", "modelmon-0.1.0.dist-info"}
    modules = {f"modelmon/{p.relative_to(REPO / 'modelmon').as_posix()}" for p in (REPO / "modelmon").rglob("*.py")}
    templates = {f"modelmon/templates/{p.name}" for p in (REPO / "modelmon" / "templates").iterdir() if p.is_file()}
    assert modules <= set(names) and templates <= set(names)
    assert set(names) - modules - templates == {n for n in names if n.startswith("modelmon-0.1.0.dist-info/")}
    entry_points = zipfile.ZipFile(wheel).read("modelmon-0.1.0.dist-info/entry_points.txt").decode()
    assert "modelmon = modelmon.cli:run" in entry_points


def user_repository(tmp_path: Path, spec: str) -> Path:
    repo = tmp_path / "user-repo"
    (repo / "slos").mkdir(parents=True)
    (repo / "slos" / "checkout.yaml").write_text(textwrap.dedent(spec))
    return repo


def modelmon(bin_dir: Path, repo: Path, *args: str) -> subprocess.CompletedProcess:
    # Nothing of the checkout on the path: only the installed wheel can answer.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(bin_dir / "modelmon"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )


def files_in(repo: Path) -> set[str]:
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}


def test_the_installed_wheel_validates_by_path_and_builds_only_what_the_repository_needs(installed, tmp_path):
    repo = user_repository(tmp_path, SPEC)
    where = subprocess.run(
        [str(installed / "python"), "-c", "import modelmon; print(modelmon.__file__)"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed.parent))

    for args in (["validate", "slos/checkout.yaml"], ["validate", "-i", "slos"], ["validate"]):
        result = modelmon(installed, repo, *args)
        assert (result.returncode, result.stdout) == (0, "1 file(s), 1 SLO(s): valid\n"), result.stderr
    draft = tmp_path / "draft.yaml"
    draft.write_text(textwrap.dedent(UNFIREABLE))
    refused = modelmon(installed, repo, "validate", str(draft))
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"{draft}:11:65: slos[0].alerting.windows[0].budget_percent: the 1h/5m page alert fires above"
    )

    built = modelmon(installed, repo, "build")
    assert built.returncode == 0, built.stderr
    assert built.stdout.splitlines()[-1].endswith("; promtool check rules: ok")  # no amtool: no Alertmanager

    rules = yaml.safe_load((repo / "rules" / "checkout.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = {p for p in files_in(repo) if p.startswith("prometheus/tests/")}
    assert tests and all(p.startswith("prometheus/tests/checkout") and p.endswith(".test.yml") for p in tests)
    kept = {p for p in files_in(repo) if p.startswith(".modelmon/test-groups/")}  # each SLO's test groups
    assert len(kept) == 1
    # The service's rule file, runbook pages, index rows and test files, as made from its plan, and
    # its SLO's pages.
    kept |= {p for p in files_in(repo) if p.startswith(".modelmon/service-texts/")}
    assert len(kept) == 1 + 5
    # The spec file as loaded and checked.
    kept |= {p for p in files_in(repo) if p.startswith(".modelmon/specs/") and p.endswith(".pickle")}
    assert len(kept) == 1 + 5 + 1
    assert files_in(repo) - kept == {
        "slos/checkout.yaml",
        "rules/checkout.yml",
        *tests,
        "runbooks/index.md",
        *(f"runbooks/{alert}.md" for alert in alerts),
        ".modelmon/build-cache.json",
        ".modelmon/promtool-accepted.json",  # the rule files this promtool accepted (modelmon.cache)
        ".modelmon/build.lock",  # one build at a time (modelmon.transaction)
        ".modelmon/.gitignore",
    }
    assert (repo / ".modelmon" / ".gitignore").read_text().splitlines()[-1] == "*"
    for path in files_in(repo) - {"slos/checkout.yaml"} - {p for p in files_in(repo) if p.startswith(".modelmon/")}:
        first = (repo / path).read_text().splitlines()[0]
        assert "Generated by modelmon from slos/checkout.yaml" in first, path
        assert "run `modelmon build`" in first and "make" not in first, path

    binary = promtool.find_promtool()
    check = subprocess.run([binary, "check", "rules", "rules/checkout.yml"], cwd=repo, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # One promtool per file, side by side: the whole-period file takes most of the time.
    runs = [
        subprocess.Popen([binary, "test", "rules", test], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for test in sorted(tests)
    ]
    for test, process in zip(sorted(tests), runs, strict=True):
        output = process.communicate(timeout=300)[0].decode()
        assert process.returncode == 0, f"{test}:\n{output}"
    again = modelmon(installed, repo, "build", "--check")
    assert again.returncode == 0, again.stderr


def test_the_installed_wheel_builds_the_dashboard_of_a_spec_that_asks_for_one(installed, tmp_path):
    repo = user_repository(tmp_path, WITH_DASHBOARD)

    built = modelmon(installed, repo, "build")

    assert built.returncode == 0, built.stderr
    board = (repo / "grafana" / "dashboards" / "checkout.json").read_text()
    assert "Do not edit: change the spec and run `modelmon build`." in board
    assert not (repo / "alertmanager").exists() and not (repo / "schema").exists() and not (repo / "docs").exists()
