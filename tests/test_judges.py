"""The field's own checkers on every generated rules file, at the versions of tools/versions.toml:
Mimir's ruler (`mimirtool rules check --strict`, `mimirtool rules lint`), the Thanos Ruler
(`thanos tools rules-check`), and both amtools on the Alertmanager config (promtool's
`check rules` runs in every build).

Two projects: the shipped specs (the three shortcut SLIs), and one with every other SLI form
(Sloth events, a raw ratio, a custom selector and group_by, custom windows), so a rule shape
only one of them has is judged too. pint (cloudflare/pint) and Grafana's dashboard-linter are
not on the Go module proxy these machines reach: docs/other-engines.md says so and what checks
their ground instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelmon import build
from tests import binaries
from tests.project_files import EVERY_FORM

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory) -> list[Path]:
    """The rules of both projects, as `make rules` writes them."""
    every_form = tmp_path_factory.mktemp("every-form")
    (every_form / "slos").mkdir()
    (every_form / "slos" / "checkout.yaml").write_text(EVERY_FORM.lstrip())
    build.write_all(every_form, build.compile_all(every_form))
    shipped = sorted((REPO / "rules").glob("*.yml"))
    built = sorted((every_form / "rules").glob("*.yml"))
    assert shipped and built
    return shipped + built


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_mimir_ruler_accepts_every_rule_name_and_finds_no_duplicate_series(rule_files):
    """--strict: every record is level:metric:operation and no two rules emit the same series."""
    mimirtool = binaries.pinned("mimirtool")
    for path in rule_files:
        result = run(mimirtool, "rules", "check", "--strict", str(path))
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{path}:\n{output}"
        assert "level=error" not in output and "level=warn" not in output, f"{path}:\n{output}"


def test_mimir_parses_every_expression(rule_files):
    """`rules lint` rewrites a file with Mimir's PromQL parser: it must read every expression.
    (It reformats: sorted keys, one-line expressions; the dry run parses and writes nothing.)"""
    mimirtool = binaries.pinned("mimirtool")
    for path in rule_files:
        result = run(mimirtool, "rules", "lint", "--dry-run", str(path))
        assert result.returncode == 0, f"{path}:\n{result.stdout}{result.stderr}"
        assert "msg=SUCCESS" in result.stdout + result.stderr


def test_thanos_ruler_loads_every_rule(rule_files):
    """The Thanos Ruler's own check (its rule file format, Prometheus' parser at the version
    Thanos builds with) finds every rule of each file."""
    thanos = binaries.pinned("thanos")
    for path in rule_files:
        result = run(thanos, "tools", "rules-check", f"--rules={path}")
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{path}:\n{output}"
        rules = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text())["groups"])
        assert f"result=SUCCESS rulesfound={rules}" in output, output


def test_thanos_ruler_check_fails_on_a_broken_expression(tmp_path):
    """So a pass above means the rules were read, not skipped."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n- name: g\n  rules:\n  - record: job:x:rate5m\n    expr: sum(rate(x[5m])\n")
    result = run(binaries.pinned("thanos"), "tools", "rules-check", f"--rules={broken}")
    assert result.returncode == 1
    assert "unclosed left parenthesis" in result.stdout + result.stderr


@pytest.mark.parametrize("amtool", binaries.both("amtool"))
def test_both_amtools_accept_the_alertmanager_config(amtool):
    """Debian's 0.25 and the pinned 0.34 (what compose deploys) read the same generated file."""
    result = run(amtool(), "check-config", str(REPO / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_utf8_info_label_names_load_into_vmalert_but_not_into_mimir(tmp_path):
    """What docs/other-engines.md says of Sloth's info_labels with names only Prometheus 3 reads:
    vmalert takes the file, mimirtool's parser (like Prometheus 2's) refuses it, naming the label;
    a legacy name passes both, so the refusal is the name's."""
    from tests.test_sloth_names import info_plugin

    vmalert = shutil.which("vmalert") or "/usr/bin/vmalert"
    for name, loads_in_mimir in (("plug-l1", False), ("plug_l1", True)):
        root = tmp_path / name
        (root / "slos").mkdir(parents=True)
        (root / "slos" / "svc.yaml").write_text(info_plugin(f"{{labels: {{{name}: in-k1}}}}"))
        build.write_all(root, build.compile_all(root))
        rules = root / "rules" / "svc.yml"
        assert f"{name}: in-k1" in rules.read_text()
        mimir = run(binaries.pinned("mimirtool"), "rules", "lint", "--dry-run", str(rules))
        assert (mimir.returncode == 0) is loads_in_mimir, mimir.stdout + mimir.stderr
        if not loads_in_mimir:
            assert f"invalid label name: {name}" in mimir.stdout + mimir.stderr
        checked = run(vmalert, "-dryRun", f"-rule={rules}")
        assert checked.returncode == 0, checked.stdout + checked.stderr
