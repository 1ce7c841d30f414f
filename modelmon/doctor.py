"""`modelmon doctor`: the guide's troubleshooting section, run against a live Prometheus.

Each check reports in plain words and the command exits non-zero when any fails:
targets up (a 401 named as a bearer-token mismatch), the four metric names present
exactly, every dashboard panel's query returning data (and for which models), rule
groups evaluating without errors, the rules Prometheus runs equal to those on disk
(matched by group name, whatever the files are called), a retention that holds the
longest SLO period, Alertmanager connected and delivering, data still fresh.

A young stack is not a broken one. Rules in slow groups (the 5-minute tiles) have
recorded nothing until their group first evaluates after their inputs appear, and
the windows that average the tiles are short of their length until the oldest tile
is that old. What is still filling is reported with the time it is due, worked out
from what Prometheus says (each group's interval and last evaluation, when it loaded
the rules, which series exist, the oldest tile), and is no problem.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelmon import backfill, contract
from modelmon.conventions import PERIOD_DAYS_RECORD, SERVICE_LABEL, SLO_LABEL
from modelmon.durations import format_duration, parse_duration
from modelmon.outputs import dashboard

METRICS = (
    contract.REQUESTS_TOTAL,
    contract.ERRORS_TOTAL,
    contract.LATENCY_MS_BUCKET,
    contract.LATENCY_MS_COUNT,
    contract.LATENCY_MS_SUM,
    contract.TOKENS_USED_TOTAL,
)
# A series name with its optional matchers and range, as the generated rules and panels
# write them: `name{a="b"}[30d]`. The look-behind makes a match start a name, never the
# middle of one or of a quoted label value.
SELECTOR = re.compile(r'(?<![\w:"])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?(?:\[(\w+)\])?')
EQUALS = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
RELOAD = (
    "To apply the files: `make reload` under `make up`, `curl -X POST http://localhost:9090/-/reload` for "
    "docker compose (Prometheus needs --web.enable-lifecycle)"
)


class PrometheusUnreachable(RuntimeError):
    pass


KINDS = {"ok": "ok     ", "filling": "filling", "skipped": "skipped", "problem": "PROBLEM"}


@dataclass
class Report:
    """Lines of four kinds: ok, filling (a young stack, due at a stated time), skipped (a check that
    could not be made from here, with how to make it) and problem."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(("ok", text))

    def filling(self, text: str) -> None:
        self.lines.append(("filling", text))

    def skipped(self, text: str) -> None:
        self.lines.append(("skipped", text))

    def problem(self, text: str) -> None:
        self.lines.append(("problem", text))

    def count(self, kind: str) -> int:
        return sum(k == kind for k, _ in self.lines)

    @property
    def healthy(self) -> bool:
        return self.count("problem") == 0

    def __str__(self) -> str:
        return "\n".join(f"{KINDS[kind]}  {text}" for kind, text in self.lines)


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


def diagnose(
    url: str,
    board_path: Path | None,
    max_age_s: float = 120.0,
    rules_dir: Path | None = None,
    alertmanager: str | None = None,
    notifications_window_s: int = 3600,
) -> Report:
    prom = Prometheus(url)
    report = Report()
    check_targets(prom, report)
    check_metric_names(prom, report)
    groups = prom.get("/api/v1/rules")["groups"]
    warmup = Warmup(prom, groups)
    if board_path is not None:
        check_panels(prom, json.loads(board_path.read_text(encoding="utf-8")), report, warmup)
    check_rules(groups, report)
    check_retention(prom, groups, report)
    check_averaged_windows(prom, warmup, report)
    if rules_dir is not None:
        check_rules_on_disk(prom, groups, rules_dir, report)
    check_alertmanager(prom, report, alertmanager, notifications_window_s)
    check_freshness(prom, report, max_age_s)
    return report


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an API timestamp; None for Go's zero time (never happened)."""
    moment = datetime.fromisoformat(text)
    return moment.timestamp() if moment.year > 1970 else None


def when(seconds: float, now: float, rounding=math.ceil) -> str:
    """A time a person reads, to the minute (rounded up: "due by 14:05"); the date too when not today."""
    moment = time.localtime(rounding(seconds / 60) * 60)
    today = time.localtime(now)[:3] == moment[:3]
    return time.strftime("%H:%M" if today else "%Y-%m-%d %H:%M", moment)


def every(seconds: float) -> str:
    return format_duration(round(seconds)) if seconds >= 1 else f"{seconds * 1000:.0f}ms"


@dataclass(frozen=True, eq=False)
class Group:
    name: str
    interval: float
    last_evaluation: float | None  # None: not evaluated since Prometheus loaded the rules


@dataclass(frozen=True, eq=False)
class Recording:
    """A recording rule as Prometheus runs it."""

    name: str
    query: str
    labels: dict[str, str]
    group: Group
    position: int
    broken: bool


@dataclass(frozen=True)
class Filling:
    """A series still to come: due `by`, once `source`'s group has evaluated it."""

    by: float
    source: Recording


class Warmup:
    """Whether recording rules that have written nothing yet are only waiting, and until when."""

    def __init__(self, prom: Prometheus, groups: list[dict]):
        self.prom = prom
        self.now = time.time()
        self.loaded_at = parse_time(prom.get("/api/v1/status/runtimeinfo")["lastConfigTime"]) or self.now
        self.by_name: dict[str, list[Recording]] = {}
        for g in groups:
            group = Group(g["name"], float(g["interval"]), parse_time(g["lastEvaluation"]))
            for position, rule in enumerate(g["rules"]):
                if rule["type"] == "recording":
                    recording = Recording(
                        rule["name"], rule["query"], rule.get("labels") or {}, group, position, rule["health"] == "err"
                    )
                    self.by_name.setdefault(rule["name"], []).append(recording)
        self._filling: dict[Recording, Filling | None] = {}

    def reads(self, expr: str) -> list[Recording]:
        """The recording rules whose series `expr` selects; a matcher that contradicts a rule's labels rules it out."""
        found = []
        for name, matchers, _ in SELECTOR.findall(expr):
            wanted = dict(EQUALS.findall(matchers))
            found += [r for r in self.by_name.get(name, []) if all(r.labels.get(k, v) == v for k, v in wanted.items())]
        return found

    def waiting(self, expr: str) -> Filling | None:
        """The last of the rules `expr` reads that are still to write their first series, if any is."""
        return max(filter(None, map(self.filling, self.reads(expr))), key=lambda f: f.by, default=None)

    def filling(self, rule: Recording) -> Filling | None:
        """When `rule` writes its first series if it has none and is only waiting; None when it has
        series, is broken, or would write nothing however long one waits."""
        if rule not in self._filling:
            self._filling[rule] = None  # a rule reading itself waits for nothing
            self._filling[rule] = self._first_series(rule)
        return self._filling[rule]

    def _first_series(self, rule: Recording) -> Filling | None:
        group = rule.group
        if rule.broken or self.stalled(group) or self.has_series(rule):
            return None
        if self.prom.query(f"count({rule.query})"):
            # Its inputs are there: the group's next evaluation writes it.
            return Filling(self.next_evaluation(group, self.now), rule)
        waits = []
        for read in self.reads(rule.query):
            upstream = self.filling(read)
            if upstream is None:
                continue
            # A group runs its rules in order at one timestamp: a later rule reads what an earlier one just wrote.
            same_run = read.group is group and read.position < rule.position
            by = upstream.by if same_run else self.next_evaluation(group, upstream.by)
            waits.append(Filling(by, upstream.source))
        return max(waits, key=lambda f: f.by, default=None)

    def stalled(self, group: Group) -> bool:
        """A group that missed its evaluations is not warming up: whatever it lacks will not come by waiting."""
        return self.now - (group.last_evaluation or self.loaded_at) > 2 * group.interval

    def has_series(self, rule: Recording) -> bool:
        labels = [f'__name__="{rule.name}"', *(f"{k}={json.dumps(v)}" for k, v in rule.labels.items())]
        recent = f"{int(2 * rule.group.interval * 1000)}ms"
        return bool(self.prom.query(f"count(last_over_time({{{','.join(labels)}}}[{recent}]))"))

    def next_evaluation(self, group: Group, after: float) -> float:
        """When the group evaluates next at or after `after`: exactly, or at the latest.

        Prometheus evaluates a group at fixed slots, one interval apart from its last
        evaluation; before the first one the slots are unknown, but the first comes within
        an interval of loading the rules (and any later one within an interval of `after`).
        """
        if group.last_evaluation is None:
            return (self.loaded_at if after <= self.now else after) + group.interval
        slots = max(1, math.ceil((after - group.last_evaluation) / group.interval))
        return group.last_evaluation + slots * group.interval

    def averaged(self) -> dict[Group, tuple[list[str], list[int]]]:
        """Per group whose series rules of other groups average over ranges (the tiles): names and ranges."""
        found: dict[Group, tuple[list[str], list[int]]] = {}
        for rules in self.by_name.values():
            for rule in rules:
                for name, _, window in SELECTOR.findall(rule.query):
                    sources = self.by_name.get(name, [])
                    if not (window and sources) or sources[0].group is rule.group:
                        continue
                    names, windows = found.setdefault(sources[0].group, ([], []))
                    if name not in names:
                        names.append(name)
                    seconds = parse_duration(window)
                    if seconds not in windows:
                        windows.append(seconds)
        return found


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


def check_panels(prom: Prometheus, board: dict, report: Report, warmup: Warmup) -> None:
    panels = [p for p in board["panels"] if p["type"] != "row"]
    # Panels waiting on the same rule group are told once: the group, when it writes, when they fill.
    waiting: dict[Group, tuple[Filling, list[str], float]] = {}
    for panel in panels:
        for target in panel.get("targets", []):
            expr = dashboard.as_sent(target)
            result = prom.query(expr)
            if result:
                models = sorted({r["metric"].get(contract.MODEL_LABEL, "") for r in result} - {""})
                shown = f"models: {', '.join(models)}" if models else f"{len(result)} series"
                report.ok(f"panel {panel['title']!r} has data ({shown})")
                continue
            due = warmup.waiting(expr)
            if due is None:
                report.problem(f"panel {panel['title']!r} shows No data: {expr}")
                continue
            first, titles, by = waiting.get(due.source.group, (warmup.filling(due.source), [], due.by))
            if panel["title"] not in titles:
                titles.append(panel["title"])
            waiting[due.source.group] = (first, titles, max(by, due.by))
    for group, (first, titles, by) in waiting.items():
        report.filling(
            f"panels {', '.join(map(repr, titles))} have no data yet: they read {first.source.name} "
            f"(group {group.name}, evaluated every {every(group.interval)}), whose first sample is due by "
            f"{when(first.by, warmup.now)}; the panels fill by {when(by, warmup.now)}"
        )


def check_rules(groups: list[dict], report: Report) -> None:
    if not groups:
        report.problem("no rule groups are loaded: check rule_files in prometheus.yml and run `modelmon build`")
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


def check_averaged_windows(prom: Prometheus, warmup: Warmup, report: Report) -> None:
    """How long until the windows that average tiles hold their whole length of them."""
    for group, (names, windows) in warmup.averaged().items():
        oldest = backfill.first_live_tile(prom, [{"rules": [{"record": n} for n in names]}], max(windows))
        if oldest is None:
            coming = [f for rule in warmup.by_name[names[0]] if (f := warmup.filling(rule))]
            if not coming:
                continue  # no tile and none coming: the panels reading them say so
            start = min(f.by for f in coming)
            text = f"first tile due by {when(start, warmup.now)}"
        else:
            start = oldest
            text = f"oldest tile from {when(oldest, warmup.now, math.floor)}"
        due = [(w, start + w) for w in sorted(windows) if start + w > warmup.now]
        if due:
            report.filling(
                f"tiles recorded every {every(group.interval)} (group {group.name}): {text}; the windows averaging "
                f"them are complete {', '.join(f'{format_duration(w)} by {when(t, warmup.now)}' for w, t in due)}. "
                "Until then they cover the time since the first tile (`modelmon backfill` computes older tiles "
                "from raw data Prometheus already holds)"
            )


def same_expression(prom: Prometheus, on_disk: str, loaded: str) -> bool:
    """Prometheus prints the loaded query in its own layout: format the file's the same way to compare."""
    if on_disk.strip() == loaded:
        return True
    return prom.get("/api/v1/format_query", query=on_disk) == prom.get("/api/v1/format_query", query=loaded)


def rule_difference(prom: Prometheus, on_disk: dict, loaded: dict) -> str | None:
    """What differs between a rule of a file and the rule Prometheus runs in its place, if anything."""
    name = on_disk.get("record") or on_disk.get("alert")
    if (name, "recording" if "record" in on_disk else "alerting") != (loaded["name"], loaded["type"]):
        return f"{loaded['name']} where the file has {name}"
    for key in ("labels", "annotations"):
        if {k: str(v) for k, v in (on_disk.get(key) or {}).items()} != (loaded.get(key) or {}):
            return f"{name}: its {key}"
    if (parse_duration(on_disk["for"]) if "for" in on_disk else 0) != loaded.get("duration", 0):
        return f"{name}: its `for`"
    if not same_expression(prom, on_disk["expr"], loaded["query"]):
        return f"{name}: its expression"
    return None


def group_differences(prom: Prometheus, on_disk: dict, running: dict) -> list[str]:
    """What differs between a group of a rule file and a group of the same name Prometheus runs."""
    name = on_disk["name"]
    differences = []
    if "interval" in on_disk and parse_duration(on_disk["interval"]) != running["interval"]:
        differences.append(f"group {name}: its interval")
    if len(on_disk["rules"]) != len(running["rules"]):
        return [*differences, f"group {name}: {len(running['rules'])} rules where the file has {len(on_disk['rules'])}"]
    return differences + [
        f"group {name}: rule {difference}"
        for rule, running_rule in zip(on_disk["rules"], running["rules"], strict=True)
        if (difference := rule_difference(prom, rule, running_rule))
    ]


def check_rules_on_disk(prom: Prometheus, groups: list[dict], rules_dir: Path, report: Report) -> None:
    """The rule files against what Prometheus runs: `make rules` rewrites files, Prometheus reads them on reload.

    Groups are matched by name, never by file name: the Prometheus Operator (one file per
    PrometheusRule, named after its namespace, name and uid), Helm charts and config
    management load the same groups from files named otherwise. A loaded file that holds
    groups of the rule files stands for them: a group it holds that they no longer have is stale.
    """
    running: dict[str, list[dict]] = {}
    for group in groups:
        running.setdefault(group["name"], []).append(group)
    files = sorted(rules_dir.glob("*.yml"))
    on_disk = {path: (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []) for path in files}
    names = {group["name"] for file_groups in on_disk.values() for group in file_groups}
    differences = []
    loaded_files = set()
    for path, file_groups in on_disk.items():
        for group in file_groups:
            # Group names are unique within a file only: any loaded group of the name that matches will do.
            candidates = sorted(running.get(group["name"], []), key=lambda g: Path(g["file"]).name != path.name)
            if not candidates:
                differences.append(f"group {group['name']} of {path.name} is not loaded")
                continue
            loaded_files.update(c["file"] for c in candidates)
            found = [group_differences(prom, group, candidate) for candidate in candidates]
            if all(found):
                differences += found[0]
    differences += [
        f"group {group['name']} is loaded (from {group['file']}) but in none of the files"
        for group in groups
        if group["file"] in loaded_files and group["name"] not in names
    ]
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        report.problem(f"the rules Prometheus runs differ from those in {rules_dir}: {shown}. {RELOAD}")
    elif files:
        report.ok(f"Prometheus runs the rules of {rules_dir} as they are on disk")


PERIOD_RULE = PERIOD_DAYS_RECORD


def slo_periods(prom: Prometheus, groups: list[dict]) -> dict[int, list[str]]:
    """The SLO periods of the loaded rules, in seconds, each with the SLOs that have it.

    Read from the `slo:time_period:days` rules (modelmon's and Sloth's): their query is the
    period as a constant (`vector(30)`), evaluated here so the answer does not wait for
    the rule's group to run, nor depend on how the number is spelled.
    """
    periods: dict[int, list[str]] = {}
    for group in groups:
        for rule in group["rules"]:
            if rule["type"] != "recording" or rule["name"] != PERIOD_RULE:
                continue
            result = prom.query(rule["query"])
            if len(result) != 1 or not math.isfinite(days := float(result[0]["value"][1])):
                continue
            labels = rule.get("labels") or {}
            name = "/".join(filter(None, (labels.get(SERVICE_LABEL), labels.get(SLO_LABEL)))) or group["name"]
            periods.setdefault(round(days * 86400), []).append(name)
    return periods


def retention_limits(text: str) -> tuple[int | None, str | None]:
    """Prometheus' effective retention as /api/v1/status/runtimeinfo states it ("15d", "5w or 1GiB",
    "1GiB"): seconds (None: no time limit) and the size limit if any."""
    seconds, size = None, None
    for part in text.split(" or "):
        try:
            seconds = parse_duration(part.strip())
        except ValueError:
            size = part.strip()
    return seconds, size


def check_retention(prom: Prometheus, groups: list[dict], report: Report) -> None:
    """Prometheus must keep the longest SLO period: the period's budget is read from that much data.

    The effective retention comes from runtimeinfo, not from the flags: with no retention
    flag the flags read `0s` while Prometheus keeps 15 days (Debian's and the images' default).
    """
    periods = slo_periods(prom, groups)
    if not periods:
        return
    longest = max(periods)
    period = format_duration(longest)
    slos = periods[longest]
    named = ", ".join(slos[:3]) + (f" and {len(slos) - 3} more" if len(slos) > 3 else "")
    stated = prom.get("/api/v1/status/runtimeinfo").get("storageRetention", "")
    seconds, size = retention_limits(stated)
    if seconds is None and size is None:
        report.skipped(
            f"retention not checked: Prometheus does not say how long it keeps data ({stated!r}); it must keep "
            f"at least the {period} SLO period"
        )
        return
    capped = (
        f"; it is also capped at {size}: once the data outgrows that the oldest goes first, so check that "
        f"{period} of data fits"
        if size
        else ""
    )
    if seconds is None:
        report.ok(
            f"retention has no time limit, only a size limit of {size}: the {period} SLO period fits if {size} holds it"
        )
    elif seconds < longest:
        report.problem(
            f"retention {format_duration(seconds)} is shorter than the {period} SLO period ({named}): the budget "
            f"never covers a whole period; set --storage.tsdb.retention.time to at least {period}{capped}"
        )
    else:
        report.ok(f"retention {format_duration(seconds)} covers the {period} SLO period ({named}){capped}")


NOTIFICATIONS = "alertmanager_notifications_total"
FAILED = "alertmanager_notifications_failed_total"
WHY_FAILED = (
    "nobody received them. Its log names the error (`make up`: .run/logs/alertmanager.log; docker compose: "
    "`docker compose logs alertmanager`), most often a receiver's secret file that does not exist "
    "(docs/notifications.md#secrets)"
)


@dataclass
class Notifications:
    """Notifications one Alertmanager attempted and failed since it started, per integration (slack, webhook, ...)."""

    counts: dict[str, tuple[float, float]]
    started: float | None  # Unix time, when its metrics say


def alertmanager_counters(url: str) -> Notifications:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, list[float]] = {}
    started = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (NOTIFICATIONS, FAILED):
                # Summed over other labels: newer Alertmanagers split failures by `reason`.
                sent_failed = counts.setdefault(sample.labels.get("integration", "?"), [0.0, 0.0])
                sent_failed[sample.name == FAILED] += sample.value
            elif sample.name == "process_start_time_seconds":
                started = sample.value
    return Notifications({name: (sent, failed) for name, (sent, failed) in counts.items()}, started)


def utc(seconds: float, now: float) -> str:
    moment = time.gmtime(seconds)
    return time.strftime("%H:%M UTC" if time.gmtime(now)[:3] == moment[:3] else "%Y-%m-%d %H:%M UTC", moment)


def check_alertmanager(prom: Prometheus, report: Report, alertmanager: str | None = None, window_s: int = 3600) -> None:
    """Alertmanager connected, and whether its notifications are failing.

    Failures are judged from where they can be judged as current: when Prometheus scrapes
    Alertmanager, over the last `window_s` (the counters' increase); otherwise from
    Alertmanager's own counters, which count since it started and only go back to 0 when
    it restarts, which the report says. `--alertmanager` reads that Alertmanager's own
    counters. Without it, the URL Prometheus pushes to is read, which is often a name only
    Prometheus' network knows (`alertmanager:9093` under docker compose, Railway's private
    hosts): not being able to read it from here is a check not made, not a problem.
    """
    active = prom.get("/api/v1/alertmanagers")["activeAlertmanagers"]
    if not active:
        report.problem("no Alertmanager is connected: check alerting.alertmanagers in prometheus.yml")
        return
    report.ok(f"Alertmanager connected: {', '.join(a['url'] for a in active)}")
    if alertmanager is None and prom.query(f"count by (instance) ({NOTIFICATIONS})"):
        check_scraped_notifications(prom, report, window_s)
        return
    # Prometheus knows the push URL (…/api/v2/alerts); the metrics are at the root beside it.
    urls = [alertmanager] if alertmanager else [re.sub(r"/api/v\d/alerts$", "", a["url"]) for a in active]
    now = time.time()
    for url in urls:
        try:
            read = alertmanager_counters(url)
        except (urllib.error.URLError, OSError, ValueError) as err:
            if alertmanager:
                report.problem(
                    f"cannot read Alertmanager's metrics at {url}/metrics ({err}), so failed notifications go "
                    "unseen: check the URL given with --alertmanager"
                )
            else:
                report.skipped(
                    f"failed notifications not checked: Alertmanager's metrics at {url}/metrics, the URL Prometheus "
                    f"sends alerts to, cannot be read from here ({err}). Pass --alertmanager http://localhost:9093 "
                    "(its URL as seen from here), or let Prometheus scrape Alertmanager"
                )
            continue
        since = f" ({utc(read.started, now)})" if read.started else ""
        failed = {name: (sent, lost) for name, (sent, lost) in read.counts.items() if lost}
        for integration, (sent, lost) in sorted(failed.items()):
            report.problem(
                f"Alertmanager at {url}: {lost:.0f} of {sent:.0f} {integration} notifications failed since "
                f"Alertmanager started{since}; they stay counted until it restarts (let Prometheus scrape "
                f"Alertmanager to judge only the last hour): {WHY_FAILED}"
            )
        if not failed:
            sent = sum(s for s, _ in read.counts.values())
            report.ok(f"Alertmanager at {url} has delivered every notification ({sent:.0f} since it started{since})")


def check_scraped_notifications(prom: Prometheus, report: Report, window_s: int) -> None:
    """Failed notifications of the last `window_s`, per Alertmanager Prometheus scrapes: those still happening."""
    window = format_duration(window_s)

    def increase(metric: str) -> dict[tuple[str, str], float]:
        result = prom.query(f"sum by (instance, integration) (increase({metric}[{window}]))")
        return {
            (r["metric"].get("instance", "?"), r["metric"].get("integration", "?")): float(r["value"][1])
            for r in result
        }

    sent, failed = increase(NOTIFICATIONS), increase(FAILED)
    instances = sorted({instance for instance, _ in sent} | {instance for instance, _ in failed})
    for instance in instances:
        # increase() extrapolates to the window's edges: a single failure may read 1.07.
        lost = {i: n for (at, i), n in failed.items() if at == instance and n > 0}
        for integration, count in sorted(lost.items()):
            attempted = sent.get((instance, integration), count)
            report.problem(
                f"Alertmanager {instance}: {max(1, round(count))} of {max(1, round(attempted))} {integration} "
                f"notifications failed in the last {window} (counted by Prometheus, which scrapes it): {WHY_FAILED}"
            )
        if not lost:
            total = sum(n for (at, _), n in sent.items() if at == instance)
            report.ok(
                f"Alertmanager {instance}: no notification failed in the last {window} ({round(total)} sent, "
                "counted by Prometheus, which scrapes it)"
            )


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
