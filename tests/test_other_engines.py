"""The generated rules beyond one Prometheus.

- Prometheus Operator: `kubernetes/<service>-prometheusrule.yaml` carries exactly the
  groups of `rules/<service>.yml` and has the shape the PrometheusRule CRD's schema
  accepts (checked structurally here, no cluster needed).
- VictoriaMetrics: the same generated rules file runs in vmalert (Debian's package
  victoria-metrics) against VictoriaMetrics single-node, beside a real Prometheus
  with the same rules. Both scrape the same backend with simulated traffic; an
  outage of one model is injected, and both engines must fire the same alert with
  the same labels, vmalert's notification must come through a real Alertmanager with
  the generated routes, and no healthy model may alert in either. Every wait is
  bounded; every process group is killed at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from modelmon import build
from modelmon.layout import GENERATED_MARK
from modelmon.outputs import kubernetes
from stack import processes
from stack.webhook import WebhookReceiver
from tests.short_windows import short_window_stack

REPO = Path(__file__).resolve().parent.parent
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
VMALERT = shutil.which("vmalert") or "/usr/bin/vmalert"

# --- PrometheusRule: the CRD's schema (monitoring.coreos.com_prometheusrules.yaml), by hand ---

DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
GROUP_FIELDS = {"name", "interval", "labels", "limit", "partial_response_strategy", "query_offset", "rules"}
RULE_FIELDS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Kubernetes label values: at most 63 characters, alphanumeric at both ends.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def _string_map(where: str, value: object) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: must be a map of strings"]
    return [
        f"{where}.{k}: must be a string" for k, v in value.items() if not (isinstance(k, str) and isinstance(v, str))
    ]


def prometheus_rule_problems(resource: object) -> list[str]:
    """What a Kubernetes API server with the PrometheusRule CRD would refuse or silently drop (pruned fields)."""
    if not isinstance(resource, dict):
        return ["the document must be a map"]
    problems = [f"{key}: unknown top-level field" for key in set(resource) - {"apiVersion", "kind", "metadata", "spec"}]
    if resource.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.append(f"apiVersion: must be monitoring.coreos.com/v1 (got {resource.get('apiVersion')!r})")
    if resource.get("kind") != "PrometheusRule":
        problems.append(f"kind: must be PrometheusRule (got {resource.get('kind')!r})")
    metadata = resource.get("metadata")
    if not isinstance(metadata, dict):
        return [*problems, "metadata: required map"]
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 253 or not kubernetes.DNS_SUBDOMAIN.match(name):
        problems.append(f"metadata.name: must be a DNS-1123 subdomain (got {name!r})")
    for key, value in (metadata.get("labels") or {}).items():
        if not QUALIFIED_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            problems.append(f"metadata.labels: invalid key {key!r}")
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            problems.append(f"metadata.labels.{key}: invalid value {value!r}")
    for key, value in (metadata.get("annotations") or {}).items():
        if not QUALIFIED_KEY.match(key) or not isinstance(value, str):
            problems.append(f"metadata.annotations.{key}: invalid key or non-string value")
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec: required map"]
    problems += [f"spec.{key}: unknown field" for key in set(spec) - {"groups"}]
    groups = spec.get("groups")
    if not isinstance(groups, list):
        return [*problems, "spec.groups: must be a list"]
    names = [g.get("name") for g in groups if isinstance(g, dict)]
    problems += [f"spec.groups: duplicate group name {n!r}" for n in {n for n in names if names.count(n) > 1}]
    for i, group in enumerate(groups):
        where = f"spec.groups[{i}]"
        if not isinstance(group, dict):
            problems.append(f"{where}: must be a map")
            continue
        problems += [f"{where}.{key}: unknown field" for key in set(group) - GROUP_FIELDS]
        if not isinstance(group.get("name"), str) or not group["name"]:
            problems.append(f"{where}.name: required non-empty string")
        if "interval" in group and not (isinstance(group["interval"], str) and DURATION.match(group["interval"])):
            problems.append(f"{where}.interval: must be a duration string")
        if not isinstance(group.get("rules"), list):
            problems.append(f"{where}.rules: must be a list")
            continue
        for j, rule in enumerate(group["rules"]):
            at = f"{where}.rules[{j}]"
            if not isinstance(rule, dict):
                problems.append(f"{at}: must be a map")
                continue
            problems += [f"{at}.{key}: unknown field" for key in set(rule) - RULE_FIELDS]
            if ("record" in rule) == ("alert" in rule):
                problems.append(f"{at}: exactly one of record and alert")
            if "record" in rule and not (isinstance(rule["record"], str) and METRIC_NAME.match(rule["record"])):
                problems.append(f"{at}.record: must be a metric name")
            if "alert" in rule and not (isinstance(rule["alert"], str) and rule["alert"]):
                problems.append(f"{at}.alert: must be a non-empty string")
            if not isinstance(rule.get("expr"), str | int) or rule.get("expr") == "":
                problems.append(f"{at}.expr: required string")
            for field in ("for", "keep_firing_for"):
                if field in rule and not (isinstance(rule[field], str) and DURATION.match(rule[field])):
                    problems.append(f"{at}.{field}: must be a duration string like 5m (got {rule[field]!r})")
            if "annotations" in rule and "record" in rule:
                problems.append(f"{at}.annotations: only valid for alerting rules")
            for field in ("labels", "annotations"):
                if field in rule:
                    problems += _string_map(f"{at}.{field}", rule[field])
                    bad = [k for k in rule[field] if isinstance(k, str) and not LABEL_NAME.match(k)]
                    problems += [f"{at}.{field}.{k}: not a valid label name" for k in bad]
    return problems


def test_prometheus_rule_holds_exactly_the_rules_file_groups():
    compiled = build.compile_all(REPO)
    services = [item.spec.service for item in compiled.loaded]
    assert services
    for service in services:
        text = compiled.files[kubernetes.path(service)]
        assert text.startswith(f"# {GENERATED_MARK} from ")
        resource = yaml.safe_load(text)
        rules = yaml.safe_load(compiled.files[f"{build.RULES_DIR}/{service}.yml"])
        assert resource["spec"]["groups"] == rules["groups"]
        assert resource["spec"] == rules  # nothing but the groups
        assert resource["metadata"]["name"] == f"modelmon-{service}"
        assert resource["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelmon"
        assert "Do not edit" in resource["metadata"]["annotations"][kubernetes.GENERATED_ANNOTATION]
        assert resource["metadata"]["annotations"][kubernetes.SERVICE_ANNOTATION] == service
        assert prometheus_rule_problems(resource) == []


def test_committed_prometheus_rules_are_valid_and_match_the_committed_rules():
    committed = sorted((REPO / kubernetes.KUBERNETES_DIR).glob("*-prometheusrule.yaml"))
    assert committed, "make rules writes kubernetes/<service>-prometheusrule.yaml"
    for path in committed:
        resource = yaml.safe_load(path.read_text())
        assert prometheus_rule_problems(resource) == [], path.name
        service = resource["metadata"]["annotations"][kubernetes.SERVICE_ANNOTATION]
        assert path.name == f"{service}-prometheusrule.yaml"
        rules = yaml.safe_load((REPO / build.RULES_DIR / f"{service}.yml").read_text())
        assert resource["spec"]["groups"] == rules["groups"]


def test_vmalert_accepts_the_committed_rules_and_refuses_a_broken_one(tmp_path):
    """vmalert parses every query and group interval of the shipped rules (a broken copy proves it looks)."""
    committed = REPO / "rules" / "models-monitoring.yml"
    ok = subprocess.run([VMALERT, "-dryRun", f"-rule={committed}"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr[-2000:]
    broken = tmp_path / "broken.yml"
    broken.write_text(committed.read_text().replace("avg_over_time(", "avg_over_time((", 1))
    refused = subprocess.run([VMALERT, "-dryRun", f"-rule={broken}"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "avg_over_time" in refused.stdout + refused.stderr


def test_the_structural_check_catches_what_the_crd_refuses():
    resource = yaml.safe_load((REPO / kubernetes.path("models-monitoring")).read_text())
    at = next(i for i, g in enumerate(resource["spec"]["groups"]) if any("alert" in r for r in g["rules"]))
    group = resource["spec"]["groups"][at]
    alert = next(r for r in group["rules"] if "alert" in r)
    alert["for"] = "2 minutes"
    alert["labels"]["severity"] = 3
    alert["record"] = "also:a:record"
    group["rules"][0]["keep_fireing_for"] = "1m"
    resource["spec"]["groups"].append({"name": group["name"], "rules": []})
    resource["metadata"]["name"] = "Modelmon_Models"
    problems = prometheus_rule_problems(resource)
    assert "metadata.name: must be a DNS-1123 subdomain (got 'Modelmon_Models')" in problems
    assert f"spec.groups: duplicate group name {group['name']!r}" in problems
    assert f"spec.groups[{at}].rules[0].keep_fireing_for: unknown field" in problems
    index = group["rules"].index(alert)
    assert f"spec.groups[{at}].rules[{index}]: exactly one of record and alert" in problems
    assert f"spec.groups[{at}].rules[{index}].for: must be a duration string like 5m (got '2 minutes')" in problems
    assert f"spec.groups[{at}].rules[{index}].labels.severity: must be a string" in problems


@pytest.mark.parametrize(
    ("service", "expected"),
    [("models-monitoring", "modelmon-models-monitoring"), ("llm.prod", "modelmon-llm.prod")],
)
def test_valid_service_names_are_kept(service, expected):
    assert kubernetes.resource_name(service) == expected


@pytest.mark.parametrize(("service", "neighbour"), [("LLM_Prod", "llm-prod"), ("a" * 300, "a" * 299), ("x._y", "x.y")])
def test_other_service_names_become_distinct_dns_subdomains(service, neighbour):
    name = kubernetes.resource_name(service)
    assert kubernetes.DNS_SUBDOMAIN.match(name) and len(name) <= 253, name
    assert name.startswith("modelmon-")
    assert name != kubernetes.resource_name(neighbour)


def test_build_writes_and_removes_the_kubernetes_output(project):
    root = project(
        {
            "llm.yaml": """
                version: modelmon/v1
                service: LLM_Prod
                slos:
                  - name: availability
                    objective: 99
                    sli: {availability: {}}
            """
        }
    )
    build.write_all(root, build.compile_all(root))
    written = root / "kubernetes" / "LLM_Prod-prometheusrule.yaml"
    resource = yaml.safe_load(written.read_text())
    assert prometheus_rule_problems(resource) == []
    assert resource["metadata"]["name"].startswith("modelmon-llm-prod-")
    assert resource["spec"] == yaml.safe_load((root / "rules" / "LLM_Prod.yml").read_text())

    spec = root / "slos" / "llm.yaml"
    spec.write_text(spec.read_text().replace("service: LLM_Prod", "service: llm"))
    build.write_all(root, build.compile_all(root))
    assert not written.exists()
    assert (root / "kubernetes" / "llm-prometheusrule.yaml").exists()


# --- vmalert + VictoriaMetrics against Prometheus, same rules, same traffic ---

BROKEN = "gpt-4o-mini"
ALERT = "EnginesAvailabilityBudgetBurn"


def alerts(url: str) -> list[dict]:
    """Pending and firing alerts from the Prometheus-style /api/v1/alerts of Prometheus or vmalert."""
    body = processes.get_json(f"{url}/api/v1/alerts")
    assert body["status"] == "success", body
    return body["data"]["alerts"] or []  # vmalert says null for none


def firing_for(url: str, model: str) -> list[dict]:
    return [a for a in alerts(url) if a["labels"].get("model") == model and a["state"] == "firing"]


def instant(rfc3339: str) -> datetime:
    """An activeAt time of either API (nanoseconds, `Z`) as a datetime."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rfc3339).replace("Z", "+00:00"))


def victoria_metrics_args(workdir: Path, port: int, scrape_config: Path) -> list[str]:
    return [
        VICTORIA_METRICS,
        f"-storageDataPath={workdir / 'vm-data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=1d",
        f"-promscrape.config={scrape_config}",
        # Samples are queryable as soon as they are written (default: 30 s later), and no
        # cached rollup hides them: vmalert then sees what Prometheus sees, when it sees it.
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
    ]


def vmalert_args(rules: Path, port: int, vm_url: str, alertmanager_url: str) -> list[str]:
    return [
        VMALERT,
        f"-rule={rules}",
        f"-datasource.url={vm_url}",
        # Recording rules are written back, so the alert rules (which read them) see them.
        f"-remoteWrite.url={vm_url}",
        "-remoteWrite.flushInterval=1s",
        f"-notifier.url={alertmanager_url}",
        "-evaluationInterval=1s",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-loggerLevel=WARN",
    ]


def test_vmalert_fires_the_same_alert_as_prometheus_for_the_same_outage(project, tmp_path, timings):
    with WebhookReceiver() as hook:
        stack = short_window_stack(project, tmp_path, "engines", ALERT, hook.url, more_ports=("vm", "vmalert"))
        root, ports, config = stack.root, stack.ports, stack.prometheus_config
        rules_file = root / "rules" / "engines.yml"
        # Only vmalert notifies the Alertmanager: every notification the receiver gets is vmalert's.
        del config["alerting"]
        # VictoriaMetrics scrapes the backend with Prometheus' own job (bearer token file and all).
        backend_job = next(job for job in config["scrape_configs"] if job["job_name"] == "models-backend")
        scrape_config = tmp_path / "vm-scrape.yml"
        scrape_config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [backend_job]}))

        vm_url = stack.url("vm")
        vmalert_url, alertmanager_url = stack.url("vmalert"), stack.url("alertmanager")
        with (
            stack.backend_and_alertmanager(),
            processes.process(victoria_metrics_args(tmp_path, ports["vm"], scrape_config), tmp_path / "vm.log"),
        ):
            processes.wait_until("VictoriaMetrics", lambda: urllib.request.urlopen(f"{vm_url}/health"), 30)
            processes.wait_until("Alertmanager", lambda: urllib.request.urlopen(f"{alertmanager_url}/-/ready"), 30)
            vmalert = vmalert_args(rules_file, ports["vmalert"], vm_url, alertmanager_url)
            with (
                processes.process(vmalert, tmp_path / "vmalert.log"),
                stack.prometheus() as prom,
            ):
                processes.wait_until("vmalert", lambda: urllib.request.urlopen(f"{vmalert_url}/health"), 30)
                for engine, url in (("Prometheus", prom), ("VictoriaMetrics (written by vmalert)", vm_url)):
                    processes.wait_until(
                        f"a 1m ratio for every simulated model in {engine}",
                        lambda url=url: len(processes.query(url, "slo:sli_error:ratio_rate1m")) >= 10,
                        90,
                    )
                assert alerts(prom) == [] and alerts(vmalert_url) == [], "an alert before any fault"

                start = time.monotonic()
                stack.fault("POST", BROKEN, kind="outage")
                fired: dict[str, float] = {}

                def both_fired() -> bool:
                    for engine, url in (("Prometheus", prom), ("vmalert", vmalert_url)):
                        if engine not in fired and firing_for(url, BROKEN):
                            fired[engine] = time.monotonic() - start
                    return len(fired) == 2

                processes.wait_until("the page alert in Prometheus and in vmalert", both_fired, 240, every=1)
                timings.update({f"fault to firing in {engine}": s for engine, s in fired.items()})
                [from_prometheus] = firing_for(prom, BROKEN)
                [from_vmalert] = firing_for(vmalert_url, BROKEN)
                others = [a for url in (prom, vmalert_url) for a in alerts(url) if a["labels"].get("model") != BROKEN]
                recorded = {
                    engine: processes.query(url, f'slo:sli_error:ratio_rate1m{{model="{BROKEN}"}}')
                    for engine, url in (("Prometheus", prom), ("VictoriaMetrics", vm_url))
                }

                processes.wait_until(
                    "vmalert's page notification through Alertmanager",
                    lambda: [a for a in hook.alerts() if a["labels"].get("model") == BROKEN],
                    60,
                    every=1,
                )
                timings["fault to notification from vmalert"] = time.monotonic() - start

    expected = {
        "alertname": ALERT,
        "service": "engines",
        "slo": "availability",
        "model": BROKEN,
        "severity": "critical",
        "long_window": "2m",
        "short_window": "1m",
    }
    alerts_of_both = (from_prometheus, from_vmalert)
    assert expected.items() <= from_prometheus["labels"].items()
    # vmalert adds the rule group as `alertgroup` (-disableAlertgroupLabel turns it off); every other label is equal.
    vm_labels = dict(from_vmalert["labels"])
    assert vm_labels.pop("alertgroup", "engines-availability-alerts") == "engines-availability-alerts"
    assert vm_labels == from_prometheus["labels"]
    for name in ("summary", "runbook_url", "dashboard_url"):
        assert from_vmalert["annotations"][name] == from_prometheus["annotations"][name], name
    # The description renders $value with humanizePercentage in both; only the value itself differs.
    descriptions = [re.sub(r"is \d+(\.\d+)?%,", "is N%,", a["annotations"]["description"]) for a in alerts_of_both]
    assert descriptions[0] == descriptions[1] and descriptions[0].startswith("The error ratio over the last 2m is N%,")
    assert others == [], "a healthy model alerted"
    # The same samples cross the threshold at nearly the same moment: MetricsQL's rate() does not
    # extrapolate and takes the sample before the window, so the ratios differ by a few points.
    apart = abs((instant(from_vmalert["activeAt"]) - instant(from_prometheus["activeAt"])).total_seconds())
    timings["pending since, Prometheus vs vmalert"] = apart
    assert apart < 20, (from_prometheus["activeAt"], from_vmalert["activeAt"])

    # vmalert wrote its recording rules back to VictoriaMetrics; both engines agree on the outage.
    values = {engine: float(result[0]["value"][1]) for engine, result in recorded.items() if len(result) == 1}
    assert set(values) == {"Prometheus", "VictoriaMetrics"}, recorded
    assert values["Prometheus"] > 0.9 and values["VictoriaMetrics"] > 0.9, values

    page = next(a for a in hook.alerts() if a["labels"].get("model") == BROKEN)
    assert page["receiver"] == "pages" and page["status"] == "firing"
    assert expected.items() <= page["labels"].items()
    assert page["annotations"]["runbook_url"] == f"https://runbooks.example.org/modelmon/{ALERT}/?model={BROKEN}"
    assert {a["labels"]["model"] for a in hook.alerts()} == {BROKEN}, "a healthy model was notified"
