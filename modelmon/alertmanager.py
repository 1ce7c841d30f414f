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
from modelmon.loader import LoadedSpec
from modelmon.plan import SloPlan
from modelmon.spec import Notifications, Receiver
from modelmon.textgen import render_file

UNROUTED = "modelmon-unrouted"  # alerts of services without notifications: kept in Alertmanager's UI only
TEMPLATE_PATH = "alertmanager/templates/modelmon.tmpl"
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


def group_by(plans: list[SloPlan]) -> list[str]:
    """Alert name, service, SLO and every grouping label of these SLOs: one notification per
    alert and group. An alert without one of the labels (an SLO grouped otherwise) groups as if
    it were empty, so the union keeps every SLO's groups apart."""
    grouping = (label for plan in plans for label in plan.group_by)
    return list(dict.fromkeys((ALERTNAME_LABEL, *SLO_IDENTITY, *grouping)))


def _one_of(label: str, values: list[str]) -> str:
    if len(values) == 1:
        return f'{label}="{escape(values[0])}"'
    # SLO names hold letters, digits, '-', '_' and '.': only the dot means more in a regex.
    pattern = "|".join(value.replace(".", r"\.") for value in values)
    return f'{label}=~"{escape(pattern)}"'


def inhibit_rules(plans: dict[str, list[SloPlan]]) -> list[dict]:
    """A critical inhibits the warnings of its SLO and group, one rule per service and grouping-label
    set. `equal` holds when a label is missing on both sides, so each rule is matched to the SLOs
    of its set: otherwise a critical of an SLO grouped by region (no model label) would inhibit
    that SLO's warnings in every region through the rule on model."""
    rules = []
    for service in sorted(plans):
        sets: dict[tuple[str, ...], list[str]] = {}
        for plan in plans[service]:
            sets.setdefault(plan.group_by, []).append(plan.name)
        for labels, slos in sets.items():
            matchers = [_one_of(SERVICE_LABEL, [service]), _one_of(SLO_LABEL, slos)]
            rules.append(
                {
                    "source_matchers": [PAGE, *matchers],
                    "target_matchers": [TICKET, *matchers],
                    "equal": [*SLO_IDENTITY, *labels],
                }
            )
    return rules


def service_route(service: str, notifications: Notifications, plans: list[SloPlan]) -> dict:
    routes = []
    for override in notifications.routes:
        matchers = [_one_of(name, [value]) for name, value in sorted(override.match.items())]
        for severity, receiver in ((PAGE, override.page), (TICKET, override.ticket)):
            if receiver is not None:
                routes.append({"receiver": receiver, "matchers": [*matchers, severity]})
    routes.append({"receiver": notifications.page, "matchers": [PAGE]})
    routes.append({"receiver": notifications.ticket, "matchers": [TICKET]})
    # The spec's own group_by when it sets one (a coarser grouping is the team's choice), else the SLOs'.
    grouping = notifications.group_by if "group_by" in notifications.model_fields_set else group_by(plans)
    return {
        # Alerts of the service with another severity (a Sloth file's own names) still reach someone.
        "receiver": notifications.ticket,
        "matchers": [_one_of(SERVICE_LABEL, [service])],
        "group_by": list(grouping),
        "group_wait": notifications.group_wait,
        "group_interval": notifications.group_interval,
        "repeat_interval": notifications.repeat_interval,
        "routes": routes,
    }


def config(loaded: list[LoadedSpec], plans: dict[str, list[SloPlan]]) -> dict:
    """The whole config: `loaded` for the notifications blocks, `plans` (per service, every service)
    for the grouping labels of each SLO."""
    receivers: dict[str, dict] = {UNROUTED: {"name": UNROUTED}}
    routes = []
    for item in sorted(loaded, key=lambda i: i.spec.service):
        notifications = item.spec.notifications
        if notifications is None:
            continue
        for receiver in notifications.receivers:
            receivers[receiver.name] = receiver_config(receiver)
        routes.append(service_route(item.spec.service, notifications, plans[item.spec.service]))
    return {
        "templates": TEMPLATES,
        "route": {
            "receiver": UNROUTED,
            "group_by": group_by([plan for service in sorted(plans) for plan in plans[service]]),
            "routes": routes,
        },
        "inhibit_rules": inhibit_rules(plans),
        "receivers": list(receivers.values()),
    }


def templates(header: str) -> str:
    return render_file("notifications.tmpl.j2", header=header)
