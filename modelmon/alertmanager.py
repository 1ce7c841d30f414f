"""alertmanager/alertmanager.yml and its notification templates, from the specs' `notifications`.

One Alertmanager serves every service: each file with a `notifications` block gets
a route matching its `service`, pages (critical) to its page receiver and tickets
(warning) to its ticket receiver, its overrides first. A firing critical alert of
a model and SLO inhibits the matching warning. Secrets stay out: receivers name
the files Alertmanager reads them from at run time.
"""

from __future__ import annotations

from modelmon.loader import LoadedSpec
from modelmon.spec import Notifications, Receiver
from modelmon.textgen import render_file

UNROUTED = "modelmon-unrouted"  # alerts of services without notifications: kept in Alertmanager's UI only
TEMPLATE_PATH = "alertmanager/templates/modelmon.tmpl"
# Relative to alertmanager.yml: the same line works in the container (/etc/alertmanager)
# and in local runs from the repository.
TEMPLATES = ["templates/*.tmpl"]
INHIBIT_EQUAL = ["service", "slo", "model"]

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


def service_route(service: str, notifications: Notifications) -> dict:
    routes = []
    for override in notifications.routes:
        matchers = [f'{name}="{value}"' for name, value in sorted(override.match.items())]
        for severity, receiver in (("critical", override.page), ("warning", override.ticket)):
            if receiver is not None:
                routes.append({"receiver": receiver, "matchers": [*matchers, f'severity="{severity}"']})
    routes.append({"receiver": notifications.page, "matchers": ['severity="critical"']})
    routes.append({"receiver": notifications.ticket, "matchers": ['severity="warning"']})
    return {
        # Alerts of the service with another severity (a Sloth file's own names) still reach someone.
        "receiver": notifications.ticket,
        "matchers": [f'service="{service}"'],
        "group_by": list(notifications.group_by),
        "group_wait": notifications.group_wait,
        "group_interval": notifications.group_interval,
        "repeat_interval": notifications.repeat_interval,
        "routes": routes,
    }


def config(loaded: list[LoadedSpec]) -> dict:
    receivers: dict[str, dict] = {UNROUTED: {"name": UNROUTED}}
    routes = []
    for item in sorted(loaded, key=lambda i: i.spec.service):
        notifications = item.spec.notifications
        if notifications is None:
            continue
        for receiver in notifications.receivers:
            receivers[receiver.name] = receiver_config(receiver)
        routes.append(service_route(item.spec.service, notifications))
    return {
        "templates": TEMPLATES,
        "route": {
            "receiver": UNROUTED,
            "group_by": ["alertname", "service", "slo", "model"],
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": INHIBIT_EQUAL,
            }
        ],
        "receivers": list(receivers.values()),
    }


def templates(header: str) -> str:
    return render_file("notifications.tmpl.j2", header=header)
