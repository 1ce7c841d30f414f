"""Prometheus Operator output: one PrometheusRule resource per service, built as data.

`kubernetes/<service>-prometheusrule.yaml` holds a `monitoring.coreos.com/v1`
PrometheusRule whose `spec.groups` are exactly the groups of `rules/<service>.yml`
(the same list, serialised by the same dumper), so the operator loads the very
rules promtool proved. `kubectl apply -f kubernetes/` installs them; the namespace
comes from kubectl (`-n`), since where the operator looks is the cluster's choice.

Kubernetes names are stricter than service names: a resource name is a DNS-1123
subdomain (lower case, at most 253 characters). A service name that is not one
already (upper case, `_`, too long) is lowered, its `_` become `-`, and a short
hash of the original keeps two such services from landing on one name.
"""

from __future__ import annotations

import hashlib
import re

from modelmon.layout import Layout
from modelmon.outputs import rules
from modelmon.plan import ProjectPlan
from modelmon.serialize import dump_yaml

KUBERNETES_DIR = "kubernetes"
API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"
NAME_PREFIX = "modelmon-"
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelmon", "app.kubernetes.io/part-of": "modelmon"}
# Annotation keys: a DNS subdomain prefix, then a name.
GENERATED_ANNOTATION = "modelmon/generated"
SERVICE_ANNOTATION = "modelmon/service"
SOURCE_ANNOTATION = "modelmon/source"

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MAX = 253


def files(project: ProjectPlan, layout: Layout) -> dict[str, str]:
    """A PrometheusRule per service holding its rule file's groups, when the layout asks for them."""
    if not layout.kubernetes:
        return {}
    found = {}
    for service in project.services:
        groups = rules.rule_file(service.slos).groups
        resource = prometheus_rule(service.service, groups, service.source, layout.note([service.source]))
        found[layout.kubernetes_path(service.service)] = layout.header([service.source]) + dump_yaml(resource)
    return found


def path(service: str) -> str:
    return f"{KUBERNETES_DIR}/{service}-prometheusrule.yaml"


def resource_name(service: str) -> str:
    """`modelmon-<service>` as a DNS-1123 subdomain; a hash suffix when the service had to be changed."""
    name = NAME_PREFIX + service
    if len(name) <= DNS_SUBDOMAIN_MAX and DNS_SUBDOMAIN.match(name):
        return name
    digest = hashlib.sha256(service.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^a-z0-9.-]", "-", service.lower())
    # Each dot-separated part must start and end with a letter or digit.
    cleaned = ".".join(part.strip("-") or "x" for part in cleaned.split("."))
    cleaned = cleaned[: DNS_SUBDOMAIN_MAX - len(NAME_PREFIX) - len(digest) - 1].rstrip("-.")
    return f"{NAME_PREFIX}{cleaned}-{digest}"


def prometheus_rule(service: str, groups: list[dict], source: str, generated_note: str) -> dict:
    """The PrometheusRule resource of one service; `groups` is used as is, not copied or changed."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": resource_name(service),
            "labels": dict(MANAGED_BY),
            "annotations": {
                GENERATED_ANNOTATION: generated_note,
                SERVICE_ANNOTATION: service,
                SOURCE_ANNOTATION: source,
            },
        },
        "spec": {"groups": groups},
    }
