"""The spec of the end-to-end alerting tests: windows short enough to page within minutes.

Page when both the 2m and the 1m error ratio exceed 30 %: factor 10 % x 60m / 2m = 3,
times the 10 % budget, for 1m. Healthy simulated models fail well under 1 % of calls.
Notifications go to a local webhook, with short group timings.
"""

from __future__ import annotations


def short_window_spec(service: str, alert: str, webhook_url: str) -> str:
    return f"""
version: modelmon/v1
service: {service}
scrape_interval: 1s
runbook_base_url: https://runbooks.example.org/modelmon
grafana_url: https://grafana.example.org
slos:
  - name: availability
    objective: 90
    period: 1h
    sli: {{availability: {{}}}}
    alerting:
      name: {alert}
      threshold_alert: {{disable: true}}
      budget_alert: {{disable: true}}
      windows:
        - {{severity: page, long: 2m, short: 1m, budget_percent: 10, for: 1m}}
notifications:
  receivers:
    - {{name: pages, webhook: {{url: "{webhook_url}/pages"}}}}
    - {{name: tickets, webhook: {{url: "{webhook_url}/tickets"}}}}
  page: pages
  ticket: tickets
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
dashboard: {{uid: {service}}}
"""
