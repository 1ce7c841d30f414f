"""Every spec in Sloth's own repository (v0.16.0: its examples and its test data), as modelmon
reads it: compiled, or refused for a stated reason at a stated place.

Sloth reads each file alone (`sloth generate -i FILE`), so each is compiled alone here.
"""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
import yaml

from modelmon import build
from modelmon.durations import parse_duration
from modelmon.loader import SpecErrors
from tools import build as tools

COMPILES = None
# An AlertWindows resource: compiled beside an SLO of its period, whose windows it then is.
WINDOWS = "windows"
GO_SLI_PLUGIN = "is Go code modelmon cannot run: write the query it makes"
GO_SLO_PLUGIN = "Sloth plugin 'integration-tests/plugin1' is Go code modelmon cannot run"
# Sloth ignores unknown fields; modelmon names them (docs/migration.md: what modelmon refuses).
PAGE_ALERT = "slos[0].alerting.pageAlert: unknown field 'pageAlert'; did you mean 'page_alert'?"

TESTDATA = "test/integration/prometheus/testdata/"
# File -> None when it compiles, else the start of its first error after "slos/x.yaml:".
OUTCOMES = {
    "examples/contrib-denominator-corrected.yaml": COMPILES,
    # info_labels/v1 with labels only Prometheus 3 reads (plug-l1), and rule_intervals/v1.
    "examples/contrib-slo-plugins.yml": COMPILES,
    "examples/getting-started.yml": COMPILES,
    "examples/home-wifi.yml": COMPILES,
    "examples/k8s-getting-started.yml": COMPILES,
    "examples/k8s-home-wifi.yml": COMPILES,
    "examples/k8s-multifile.yml": COMPILES,
    "examples/kubernetes-apiserver.yml": COMPILES,
    "examples/multifile.yml": COMPILES,
    "examples/no-alerts.yml": COMPILES,
    "examples/openslo-getting-started.yml": COMPILES,
    "examples/openslo-kubernetes-apiserver.yml": COMPILES,
    "examples/plugin-getting-started.yml": f"14:9: slos[0].sli.plugin: Sloth SLI plugin 'getting_started_availability' "
    f"{GO_SLI_PLUGIN}",
    "examples/plugin-k8s-getting-started.yml": "28:11: spec.slos[0].sli.plugin: Sloth SLI plugin "
    f"'getting_started_availability' {GO_SLI_PLUGIN}",
    "examples/raw-home-wifi.yml": COMPILES,
    "examples/slo-plugin-getting-started.yml": COMPILES,
    "examples/slo-plugin-k8s-getting-started.yml": COMPILES,
    # Written for VictoriaMetrics (validate_victoria_metrics/v1): MetricsQL queries, which vmalert checks.
    "examples/victoria-metrics.yml": COMPILES,
    "examples/windows/7d.yaml": WINDOWS,
    "examples/windows/custom-30d.yaml": WINDOWS,
    # Not an SLO file: the PrometheusRule CRD Sloth's integration tests install.
    "test/integration/crd/prometheus-operator-crd.yaml": "4:1: apiVersion 'apiextensions.k8s.io/v1' with kind "
    "'CustomResourceDefinition' is not a form modelmon reads",
    "test/integration/k8scontroller/windows/7d.yaml": WINDOWS,
    TESTDATA + "in-base-k8s.yaml": COMPILES,
    TESTDATA + "in-base.yaml": COMPILES,
    TESTDATA + "in-invalid-version.yaml": "1:10: version: must be 'prometheus/v1' or "
    "'modelmon/v1' (got 'prometheus/v999')",
    TESTDATA + "in-multifile-k8s.yaml": COMPILES,
    TESTDATA + "in-multifile.yaml": COMPILES,
    TESTDATA + "in-openslo.yaml": COMPILES,
    TESTDATA + "in-sli-plugin.yaml": f"12:9: slos[0].sli.plugin: Sloth SLI plugin 'integration_test' {GO_SLI_PLUGIN}",
    TESTDATA + "in-slo-plugin-k8s.yaml": f"12:13: spec.sloPlugins.chain[0].id: {GO_SLO_PLUGIN}",
    TESTDATA + "in-slo-plugin.yaml": f"8:11: slo_plugins.chain[0].id: {GO_SLO_PLUGIN}",
    # Sloth's invalid specs are invalid here too (their first error may be an earlier one).
    TESTDATA + "validate/bad/bad-aa.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/bad/bad-ab.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/bad/bad-ba.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/bad/bad-k8s.yaml": "7:12: spec.service: must start with a letter",
    TESTDATA + "validate/bad/bad-multi-k8s.yaml": "22:15: spec.slos[0].alerting.name: must be "
    "an alert name like ModelAvailabilityBudgetBurn (got '')",
    TESTDATA + "validate/bad/bad-multi.yaml": "77:10: slos[1].sli: needs exactly one of",
    # Bad for Sloth only because its test runs with 30-day windows alone: a 28-day period is fine here.
    TESTDATA + "validate/bad/bad-openslo.yaml": COMPILES,
    TESTDATA + "validate/good/good-aa.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/good/good-ab.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/good/good-ba.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate/good/good-k8s.yaml": COMPILES,
    TESTDATA + "validate/good/good-multi-k8s.yaml": COMPILES,
    TESTDATA + "validate/good/good-multi.yaml": COMPILES,
    TESTDATA + "validate/good/good-openslo.yaml": COMPILES,
    TESTDATA + "validate_with_duplicates/bad-prom-multi-duplicates.yaml": f"22:7: {PAGE_ALERT}",
    TESTDATA + "validate_with_duplicates/k8s/bad-k8s-1-duplicate.yaml": COMPILES,
    TESTDATA + "validate_with_duplicates/k8s/bad-k8s-1-original.yaml": COMPILES,
    TESTDATA + "validate_with_duplicates/openslo/bad-openslo-1-duplicate.yaml": COMPILES,
    TESTDATA + "validate_with_duplicates/openslo/bad-openslo-1-original.yaml": COMPILES,
    TESTDATA + "validate_with_duplicates/prom/bad-prom-1-duplicate.yaml": f"21:7: {PAGE_ALERT}",
    TESTDATA + "validate_with_duplicates/prom/bad-prom-1-original.yaml": f"21:7: {PAGE_ALERT}",
    "test/integration/prometheus/windows/7d.yaml": WINDOWS,
}


# An SLO of a period (PERIOD), to take an AlertWindows' windows.
SLO = """\
version: prometheus/v1
service: svc
slos:
  - name: requests
    objective: 99.9
    period: PERIOD
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
"""


def sloth_specs() -> list[str]:
    """Every YAML file of Sloth's examples and test data: what OUTCOMES must cover."""
    source = tools.source("sloth")
    found = [*source.glob("examples/*.y*ml"), *source.glob("examples/windows/*.y*ml")]
    found += source.glob("test/**/*.y*ml")
    return sorted(str(path.relative_to(source)) for path in found)


def test_every_spec_of_sloths_repository_has_its_outcome_stated():
    assert sloth_specs() == sorted(OUTCOMES)


@pytest.mark.parametrize("name", sorted(n for n, outcome in OUTCOMES.items() if outcome is not WINDOWS))
def test_sloths_spec_compiles_or_is_refused_where_and_why_stated(name, project):
    root = project({})
    shutil.copyfile(tools.source("sloth") / name, root / "slos" / "x.yaml")
    try:
        compiled = build.compile_all(root)
    except SpecErrors as err:
        first = str(err.errors[0]).removeprefix("slos/x.yaml:")
        assert OUTCOMES[name] is not None, f"{name} was refused: {first}"
        assert first.startswith(OUTCOMES[name]), first
        return
    assert OUTCOMES[name] is None, f"{name} compiled, where it should be refused: {OUTCOMES[name]}"
    assert compiled.files


def test_sloths_kubernetes_getting_started_compiles_to_the_rules_of_its_prometheus_v1_twin(project, tmp_path):
    source = tools.source("sloth") / "examples"
    rules = []
    for name in ("getting-started.yml", "k8s-getting-started.yml"):
        root = project({})
        for old in (root / "slos").iterdir():
            old.unlink()
        shutil.copyfile(source / name, root / "slos" / "x.yaml")
        rules.append(build.compile_all(root).files["rules/myservice.yml"])
    assert rules[0] == rules[1]


@pytest.mark.parametrize("name", sorted(n for n, outcome in OUTCOMES.items() if outcome is WINDOWS))
def test_sloths_alert_windows_are_the_windows_of_an_slo_of_their_period(name, project):
    source = tools.source("sloth") / name
    spec = yaml.safe_load(source.read_text())["spec"]
    slo = SLO.replace("PERIOD", spec["sloPeriod"])
    root = project({"svc.yaml": slo})
    shutil.copyfile(source, root / "slos" / "windows.yaml")
    [plan] = build.compile_all(root).plans["svc"]
    period_h = Decimal(parse_duration(spec["sloPeriod"])) / 3600
    windows = [spec[severity][speed] for severity in ("page", "ticket") for speed in ("quick", "slow")]
    expected = [
        (
            parse_duration(w["longWindow"]),
            parse_duration(w["shortWindow"]),
            Decimal(str(w["errorBudgetPercent"])) / 100 * period_h * 3600 / parse_duration(w["longWindow"]),
        )
        for w in windows
    ]
    assert [(a.long_s, a.short_s, a.factor) for a in plan.burn_alerts] == expected
