"""alertmanager/alertmanager.yml and its notification templates, from the specs' `notifications`.

One Alertmanager serves every service: each file with a `notifications` block gets
a route matching its `service`, pages (critical) to its page receiver and tickets
(warning) to its ticket receiver, its overrides first. Notifications are grouped,
and a firing critical alert inhibits the warning of the same SLO, by the SLO's own
grouping labels (SloPlan.group_by): a critical of one region never silences another.
Secrets stay out: receivers name the files Alertmanager reads them from at run time.
"""

from __future__ import annotations

from modelmon.conventions import ALERTNAME_LABEL, SERVICE_LABEL, SEVERITY, SEVERITY_LABEL, SLO_LABEL, escape
from modelmon.layout import Layout
from modelmon.plan import ProjectPlan, ServicePlan
from modelmon.serialize import dump_yaml
from modelmon.spec import Receiver
from modelmon.textgen import render_file

UNROUTED = "modelmon-unrouted"  # alerts of services without notifications: kept in Alertmanager's UI only
# Relative to alertmanager.yml: the same line works in the container (/etc/alertmanager)
# and in local runs from the repository.
TEMPLATES = ["templates/*.tmpl"]
# One notification per alert, SLO and group of it; one inhibition per SLO and group.
SLO_IDENTITY = (SERVICE_LABEL, SLO_LABEL)
PAGE = f'{SEVERITY_LABEL}="{SEVERITY["page"]}"'
TICKET = f'{SEVERITY_LABEL}="{SEVERITY["ticket"]}"'

TITLE = '{{ template "modelmon.title" . }}'
TEXT = '{{ template "modelmon.text" . }}'


def receiver_config(receiver: Receiver) -> dict:
    config: dict = {"name": receiver.name}
    if receiver.webhook is not None:
        hook: dict = {"url": receiver.webhook.url, "send_resolved": True}
        if receiver.webhook.credentials_file:
            hook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": receiver.webhook.credentials_file}
            }
        config["webhook_configs"] = [hook]
    if receiver.slack is not None:
        config["slack_configs"] = [
            {
                "api_url_file": receiver.slack.api_url_file,
                "channel": receiver.slack.channel,
                "send_resolved": True,
                "title": TITLE,
                "text": TEXT,
            }
        ]
    if receiver.email is not None:
        email = {
            "to": receiver.email.to,
            "from": receiver.email.from_,
            "smarthost": receiver.email.smarthost,
            "send_resolved": True,
            "headers": {"Subject": TITLE},
            "text": TEXT,
        }
        if receiver.email.auth_username:
            email["auth_username"] = receiver.email.auth_username
        if receiver.email.auth_password_file:
            email["auth_password_file"] = receiver.email.auth_password_file
        config["email_configs"] = [email]
    if receiver.pagerduty is not None:
        config["pagerduty_configs"] = [
            {
                "routing_key_file": receiver.pagerduty.routing_key_file,
                "send_resolved": True,
                "description": TITLE,
                "details": {
                    "summary": "{{ .CommonAnnotations.summary }}",
                    "runbook": "{{ .CommonAnnotations.runbook_url }}",
                    "dashboard": "{{ .CommonAnnotations.dashboard_url }}",
                },
            }
        ]
    return config


def _one_of(label: str, values: list[str]) -> str:
    if len(values) == 1:
        return f'{label}="{escape(values[0])}"'
    # SLO names hold letters, digits, '-', '_' and '.': only the dot means more in a regex.
    pattern = "|".join(value.replace(".", r"\.") for value in values)
    return f'{label}=~"{escape(pattern)}"'


def inhibit_rules(project: ProjectPlan) -> list[dict]:
    """A critical inhibits the warnings of its SLO and group, one rule per service and grouping-label
    set. `equal` holds when a label is missing on both sides, so each rule is matched to the SLOs
    of its set: otherwise a critical of an SLO grouped by region (no model label) would inhibit
    that SLO's warnings in every region through the rule on model."""
    rules = []
    for service in sorted(project.services, key=lambda s: s.service):
        sets: dict[tuple[str, ...], list[str]] = {}
        for plan in service.slos:
            sets.setdefault(plan.group_by, []).append(plan.name)
        for labels, slos in sets.items():
            matchers = [_one_of(SERVICE_LABEL, [service.service]), _one_of(SLO_LABEL, slos)]
            rules.append(
                {
                    "source_matchers": [PAGE, *matchers],
                    "target_matchers": [TICKET, *matchers],
                    "equal": [*SLO_IDENTITY, *labels],
                }
            )
    return rules


def service_route(service: ServicePlan) -> dict:
    notifications = service.notifications
    routes = []
    for override in notifications.routes:
        matchers = [_one_of(name, [value]) for name, value in sorted(override.match.items())]
        for severity, receiver in ((PAGE, override.page), (TICKET, override.ticket)):
            if receiver is not None:
                routes.append({"receiver": receiver, "matchers": [*matchers, severity]})
    routes.append({"receiver": notifications.page, "matchers": [PAGE]})
    routes.append({"receiver": notifications.ticket, "matchers": [TICKET]})
    # The spec's own group_by when it sets one (a coarser grouping is the team's choice), else the SLOs'.
    return {
        # Alerts of the service with another severity (a Sloth file's own names) still reach someone.
        "receiver": notifications.ticket,
        "matchers": [_one_of(SERVICE_LABEL, [service.service])],
        "group_by": list(service.notification_group_by),
        "group_wait": notifications.group_wait,
        "group_interval": notifications.group_interval,
        "repeat_interval": notifications.repeat_interval,
        "routes": routes,
    }


def files(project: ProjectPlan, layout: Layout) -> dict[str, str]:
    """alertmanager.yml and its templates, while some spec routes notifications."""
    if not layout.alertmanager or all(service.notifications is None for service in project.services):
        return {}
    header = layout.header(project.sources)
    return {
        layout.alertmanager: header + dump_yaml(config(project)),
        layout.alertmanager_templates_path(): templates(header.strip("# \n")),
    }


def config(project: ProjectPlan) -> dict:
    """The whole config: a route per service with notifications, inhibitions for every SLO."""
    receivers: dict[str, dict] = {UNROUTED: {"name": UNROUTED}}
    routes = []
    for service in sorted(project.services, key=lambda s: s.service):
        if service.notifications is None:
            continue
        for receiver in service.notifications.receivers:
            receivers[receiver.name] = receiver_config(receiver)
        routes.append(service_route(service))
    return {
        "templates": TEMPLATES,
        "route": {
            "receiver": UNROUTED,
            "group_by": [ALERTNAME_LABEL, *SLO_IDENTITY, *project.group_labels],
            "routes": routes,
        },
        "inhibit_rules": inhibit_rules(project),
        "receivers": list(receivers.values()),
    }


def templates(header: str) -> str:
    return render_file("notifications.tmpl.j2", header=header)
