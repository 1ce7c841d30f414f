"""`modelmon doctor`: the guide's troubleshooting section, run against a live Prometheus.

Each check reports in plain words and the command exits non-zero when any fails:
targets up (a 401 named as a bearer-token mismatch), the four metric names present
exactly, every dashboard panel's query returning data (and for which models), rule
groups evaluating without errors, Alertmanager connected, data still fresh.
"""

from __future__ import annotations

import difflib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from generator import contract

METRICS = (
    contract.REQUESTS_TOTAL,
    contract.ERRORS_TOTAL,
    contract.LATENCY_MS_BUCKET,
    contract.LATENCY_MS_COUNT,
    contract.LATENCY_MS_SUM,
    contract.TOKENS_USED_TOTAL,
)


class PrometheusUnreachable(RuntimeError):
    pass


@dataclass
class Report:
    lines: list[tuple[bool, str]] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append((True, text))

    def problem(self, text: str) -> None:
        self.lines.append((False, text))

    @property
    def healthy(self) -> bool:
        return all(ok for ok, _ in self.lines)

    def __str__(self) -> str:
        return "\n".join(f"{'ok     ' if ok else 'PROBLEM'}  {text}" for ok, text in self.lines)


class Prometheus:
    """The few HTTP API calls the doctor needs, with errors that say what failed."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str, **params: str) -> object:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            raise PrometheusUnreachable(f"{self.url}{path} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise PrometheusUnreachable(f"cannot reach Prometheus at {self.url}: {err}") from None
        if body.get("status") != "success":
            raise PrometheusUnreachable(f"{path}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]


def diagnose(url: str, board_path: Path | None, max_age_s: float = 120.0) -> Report:
    prom = Prometheus(url)
    report = Report()
    check_targets(prom, report)
    check_metric_names(prom, report)
    if board_path is not None:
        check_panels(prom, json.loads(board_path.read_text(encoding="utf-8")), report)
    check_rules(prom, report)
    check_alertmanager(prom, report)
    check_freshness(prom, report, max_age_s)
    return report


def check_targets(prom: Prometheus, report: Report) -> None:
    targets = prom.get("/api/v1/targets")["activeTargets"]
    if not targets:
        report.problem("Prometheus has no active scrape targets: check scrape_configs in prometheus.yml")
    for target in targets:
        job, where = target["labels"].get("job", "?"), target["scrapeUrl"]
        if target["health"] == "up":
            report.ok(f"target {job} ({where}) is up")
        elif "401" in target.get("lastError", ""):
            report.problem(
                f"target {job} ({where}) answers 401 Unauthorized: bearer-token mismatch. The token in "
                "Prometheus' credentials_file must equal the backend's MODELMON_METRICS_TOKEN"
            )
        else:
            error = target.get("lastError") or "not scraped yet"
            report.problem(f"target {job} ({where}) is {target['health']}: {error}")


def check_metric_names(prom: Prometheus, report: Report) -> None:
    names = set(prom.get("/api/v1/label/__name__/values"))
    for metric in METRICS:
        if metric in names:
            report.ok(f"metric {metric} is present")
            continue
        close = difflib.get_close_matches(metric, names, n=1, cutoff=0.8) or [
            n for n in names if n.lower() == metric.lower()
        ]
        hint = f"; found {close[0]!r} instead (names are case-sensitive)" if close else ""
        report.problem(f"metric {metric} is missing{hint}")


def check_panels(prom: Prometheus, board: dict, report: Report) -> None:
    panels = [p for p in board["panels"] if p["type"] != "row"]
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$model", ".*")
            result = prom.query(expr)
            if not result:
                report.problem(f"panel {panel['title']!r} shows No data: {expr}")
                continue
            models = sorted({r["metric"].get(contract.MODEL_LABEL, "") for r in result} - {""})
            shown = f"models: {', '.join(models)}" if models else f"{len(result)} series"
            report.ok(f"panel {panel['title']!r} has data ({shown})")


def check_rules(prom: Prometheus, report: Report) -> None:
    groups = prom.get("/api/v1/rules")["groups"]
    if not groups:
        report.problem("no rule groups are loaded: check rule_files in prometheus.yml and run `make rules`")
        return
    broken = [
        (group["name"], rule.get("name"), rule.get("lastError", ""))
        for group in groups
        for rule in group["rules"]
        if rule.get("health") == "err"
    ]
    for group, rule, error in broken:
        report.problem(f"rule {rule} in group {group} fails to evaluate: {error}")
    if not broken:
        count = sum(len(g["rules"]) for g in groups)
        report.ok(f"{len(groups)} rule groups ({count} rules) evaluate without errors")


def check_alertmanager(prom: Prometheus, report: Report) -> None:
    active = prom.get("/api/v1/alertmanagers")["activeAlertmanagers"]
    if active:
        report.ok(f"Alertmanager connected: {', '.join(a['url'] for a in active)}")
    else:
        report.problem("no Alertmanager is connected: check alerting.alertmanagers in prometheus.yml")


def check_freshness(prom: Prometheus, report: Report, max_age_s: float) -> None:
    result = prom.query(f"time() - max(timestamp({contract.REQUESTS_TOTAL}))")
    if not result:
        report.problem(f"no {contract.REQUESTS_TOTAL} samples: nothing to check for freshness")
        return
    age = float(result[0]["value"][1])
    if age <= max_age_s:
        report.ok(f"data is updating: newest sample {age:.0f}s old")
    else:
        report.problem(f"data stopped updating: newest sample is {age:.0f}s old (more than {max_age_s:.0f}s)")
