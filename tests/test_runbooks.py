"""Runbook pages and the mkdocs site: every alert's runbook_url opens a page the site builds.

The site is built with the real mkdocs (`--strict`, as `make docs` and CI do); the
queries on the pages are checked with the real promtool.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from modelmon import build, cli, promtool
from modelmon.formatting import number
from modelmon.layout import GENERATED_MARK
from modelmon.outputs import runbooks
from modelmon.spec import SloFile

REPO = Path(__file__).resolve().parent.parent
MKDOCS = Path(sys.executable).parent / "mkdocs"
SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation")
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)\n```", re.DOTALL)
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
PLACEHOLDER = re.compile(r"\$[A-Z_]+\b")


@pytest.fixture(scope="module")
def compiled():
    return build.compile_all(REPO)


def mkdocs_build(root: Path, out: Path) -> subprocess.CompletedProcess:
    """`make docs`: mkdocs build --strict."""
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The repository's site, built as `make docs` builds it."""
    out = tmp_path_factory.mktemp("site")
    result = mkdocs_build(REPO, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def alert_rules(root: Path) -> list[dict]:
    rules = []
    for path in sorted((root / build.RULES_DIR).glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def plan_of(compiled, alert: str):
    return next(p for plans in compiled.plans.values() for p in plans if alert in p.alert_names())


def base_url_of(compiled, plan) -> str:
    return next(i.spec.runbook_base_url for i in compiled.loaded if i.spec.service == plan.service)


def runbook_pages(root: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in (root / "runbooks").glob("*.md") if p.name != "index.md"}


def test_every_alerts_runbook_url_opens_a_page_the_site_builds(compiled, site):
    rules = alert_rules(REPO)
    assert rules
    for rule in rules:
        plan = plan_of(compiled, rule["alert"])
        base = base_url_of(compiled, plan).rstrip("/")
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(base + "/"), url

        page = site / "runbooks" / urlsplit(url).path.removeprefix(urlsplit(base).path).strip("/") / "index.html"
        assert page.is_file(), f"{rule['alert']}: {url} has no page in the site"
        html = page.read_text()
        assert re.search(rf"<h1[^>]*>{rule['alert']}<", html)
        assert f"{number(plan.objective)}%" in html
        for section in SECTIONS:
            assert f'<h2 id="{section.lower()}">{section}' in html, f"{rule['alert']}: no {section} section"


def test_every_alerts_runbook_url_fills_in_the_labels_its_page_asks_for(compiled):
    """The page's script fills $MODEL (one $LABEL per group label) from ?model=...: the alert's
    own runbook_url carries each of them, URL-escaped, so its queries open ready to paste."""
    pages = runbook_pages(REPO)
    for rule in alert_rules(REPO):
        plan = plan_of(compiled, rule["alert"])
        boxes = re.search(r'class="modelmon-labels" data-labels="([^"]*)"', pages[rule["alert"]])
        asked = boxes.group(1).split(",") if boxes else []
        query = parse_qs(urlsplit(rule["annotations"]["runbook_url"]).query)
        assert asked == list(plan.group_by) == list(query), rule["alert"]
        for label in plan.group_by:
            assert query[label] == [f"{{{{ $labels.{label} | urlquery }}}}"], rule["alert"]


def test_burn_alert_pages_say_in_hours_when_the_budget_is_gone_at_each_rate(compiled, site):
    for plans in compiled.plans.values():
        for plan in plans:
            for alert in plan.burn_alerts:
                html = (site / "runbooks" / alert.name / "index.html").read_text()
                hours = Decimal(plan.period_s) / alert.factor / 3600
                assert f"{number(round(hours, 1))} hours" in html, (alert.name, alert.window_label)
                assert f"{number(alert.factor)}x" in html
                assert f"{alert.long} / {alert.short}" in html


def test_each_generated_alert_has_exactly_one_page_and_each_page_an_alert(site):
    alerts = {rule["alert"] for rule in alert_rules(REPO)}
    assert set(runbook_pages(REPO)) == alerts
    built = {p.name for p in (site / "runbooks").iterdir() if p.is_dir()}
    assert built == alerts
    index = (REPO / "runbooks" / "index.md").read_text()
    for alert in alerts:
        assert index.count(f"[{alert}]({alert}.md)") == 1


def test_page_and_ticket_rules_of_one_name_share_one_page_listing_every_window_pair(compiled):
    page = runbook_pages(REPO)["ModelAvailabilityBudgetBurn"]
    plan = plan_of(compiled, "ModelAvailabilityBudgetBurn")
    assert {a.severity for a in plan.burn_alerts} == {"critical", "warning"}
    for alert in plan.burn_alerts:
        assert f"| {alert.severity} ({alert.kind}) | {alert.long} / {alert.short} |" in page


def test_every_query_on_the_pages_is_promql_that_promtool_accepts(tmp_path):
    queries = [
        PLACEHOLDER.sub("claude-3-5-sonnet-20241022", expr)
        for page in runbook_pages(REPO).values()
        for expr in PROMQL_BLOCK.findall(page)
    ]
    assert len(queries) > 20
    rules = {"groups": [{"name": "runbook-queries", "rules": []}]}
    for n, expr in enumerate(queries):
        rules["groups"][0]["rules"].append({"record": f"runbook:query{n}:check", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))

    ok, _, output = promtool.check_rules([path])

    assert ok, output


def test_the_queries_filter_on_the_alerts_model(compiled):
    page = runbook_pages(REPO)["ModelErrorRateHigh"]
    assert 'slo:current_burn_rate:ratio{service="models-monitoring",slo="error-rate",model="$MODEL"}' in page
    assert 'slo:period_error_budget_remaining:ratio{service="models-monitoring",slo="error-rate",model="$MODEL"}' in (
        page
    )
    plan = plan_of(compiled, "ModelErrorRateHigh")
    assert plan.error_ratio_expr("5m") in page


def test_the_specs_runbook_text_is_added_to_every_page_of_its_slo_and_no_other(compiled, site):
    spec = next(i.spec for i in compiled.loaded if i.spec.service == "models-monitoring")
    slo = next(s for s in spec.slos if s.runbook.mitigation)
    plan = next(p for p in compiled.plans["models-monitoring"] if p.name == slo.name)
    pages = runbook_pages(REPO)
    for name, text in pages.items():
        mine = name in plan.alert_names()
        assert (slo.runbook.mitigation.strip() in text) is mine, name
        if slo.runbook.impact:
            assert (slo.runbook.impact.strip() in text) is mine, name
    html = (site / "runbooks" / plan.alert_names()[0] / "index.html").read_text()
    assert "model_routes" in html


def test_dashboard_links_open_the_panel_they_name_with_the_model_placeholder():
    board = json.loads((REPO / "grafana" / "dashboards" / "models-monitoring.json").read_text())
    titles = {p["id"]: p["title"] for p in board["panels"]}
    checked = 0
    for name, page in runbook_pages(REPO).items():
        links = [(t, u) for t, u in MARKDOWN_LINK.findall(page) if "/d/models-monitoring" in u]
        assert links, f"{name} links no dashboard panel"
        for title, url in links:
            query = parse_qs(urlsplit(url).query)
            assert query["var-model"] == ["$MODEL"], url
            if "viewPanel" in query:
                assert titles[int(query["viewPanel"][0])] == title, url
                checked += 1
    assert checked >= 3 * len(runbook_pages(REPO))


def test_error_rate_pages_link_the_guides_error_rate_and_availability_panels():
    board = json.loads((REPO / "grafana" / "dashboards" / "models-monitoring.json").read_text())
    ids = {p["title"]: p["id"] for p in board["panels"]}
    page = runbook_pages(REPO)["ModelErrorRateBudgetBurn"]
    assert f"viewPanel={ids['Model Error Rate']})" in page
    assert f"viewPanel={ids['Model Availability']})" in page
    assert f"viewPanel={ids['error-rate: burn rate']})" in page


def test_mitigation_names_the_families_and_their_providers_status_pages():
    page = runbook_pages(REPO)["ModelAvailabilityBudgetBurn"]
    mitigation = page.split("## Mitigation", 1)[1]
    for family in ("Claude", "GPT", "Gemini", "Llama", "Mistral"):
        assert family in mitigation
    for status in ("https://status.anthropic.com", "https://status.openai.com", "https://status.mistral.ai"):
        assert f"<{status}>" in mitigation
    for step in ("Fail over", "Shed load", "status page", "Roll back"):
        assert step in mitigation


def test_removing_an_slo_removes_its_pages_and_its_index_entries(models_project):
    spec_path = models_project / "slos" / "models.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["slos"] = [s for s in spec["slos"] if s["name"] != "latency"]
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))

    assert cli.main(["--root", str(models_project), "build"]) == 0

    left = set(runbook_pages(models_project))
    assert left and not any(name.startswith("ModelLatency") for name in left)
    assert {rule["alert"] for rule in alert_rules(models_project)} == left
    assert "ModelLatency" not in (models_project / "runbooks" / "index.md").read_text()


def test_build_check_flags_a_hand_edited_runbook_and_a_page_of_an_alert_that_is_gone(models_project, capsys):
    page = models_project / "runbooks" / "ModelAvailabilityLow.md"
    page.write_text(page.read_text() + "\nCall Bob.\n")
    gone = models_project / "runbooks" / "ModelRetiredAlert.md"
    header = runbooks.html_header(GENERATED_MARK, ["slos/old.yaml"], "make rules")
    gone.write_text(header + "\n# ModelRetiredAlert\n")

    assert cli.main(["--root", str(models_project), "build", "--check"]) == cli.EXIT_STALE

    err = capsys.readouterr().err
    assert "  runbooks/ModelAvailabilityLow.md\n" in err
    assert "  runbooks/ModelRetiredAlert.md\n" in err
    assert cli.main(["--root", str(models_project), "build"]) == 0
    assert not gone.exists()
    assert "Call Bob." not in page.read_text()


def test_the_base_url_in_the_spec_moves_every_runbook_link(project):
    root = project(
        {
            "llm.yaml": """
            version: modelmon/v1
            service: llm
            runbook_base_url: https://sre.example.com/modelmon/outputs/runbooks/
            slos:
              - name: availability
                objective: 99.5
                sli:
                  availability: {}
            """
        }
    )
    compiled = build.compile_all(root)
    rules = yaml.safe_load(compiled.files["rules/llm.yml"])
    urls = {r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert urls == {
        f"https://sre.example.com/modelmon/outputs/runbooks/{a}/?model={{{{ $labels.model | urlquery }}}}"
        for a in compiled.plans["llm"][0].alert_names()
    }
    assert {f"runbooks/{a}.md" for a in compiled.plans["llm"][0].alert_names()} <= set(compiled.files)


def test_a_sloth_slo_over_all_traffic_gets_pages_without_model_placeholders(project):
    root = project(
        {
            "api.yaml": """
            version: prometheus/v1
            service: api
            slos:
              - name: requests
                objective: 99.9
                sli:
                  events:
                    error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
                    total_query: sum(rate(http_requests_total[{{.window}}]))
                alerting:
                  name: ApiHighErrorRate
            """
        }
    )
    page = build.compile_all(root).files["runbooks/ApiHighErrorRate.md"]
    assert "$MODEL" not in page
    assert "modelmon-labels" not in page
    assert 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))' in page
    for section in SECTIONS:
        assert f"\n## {section}\n" in page


def test_the_default_runbook_base_url_is_where_make_docs_serve_serves_the_runbooks():
    default = urlsplit(SloFile.model_fields["runbook_base_url"].default)
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    _, port = config["dev_addr"].rsplit(":", 1)
    assert default.port == int(port) != 8000  # 8000 is the backend's
    assert f"--dev-addr {config['dev_addr']}" in (REPO / "Makefile").read_text()
    assert default.path.strip("/") == "runbooks"
    link = REPO / config["docs_dir"] / "runbooks"
    assert link.is_symlink() and (link.resolve() == (REPO / "runbooks").resolve())


def test_the_strict_site_build_fails_on_a_runbook_link_to_a_page_that_does_not_exist(models_project, tmp_path):
    shutil.copy(REPO / "mkdocs.yml", models_project / "mkdocs.yml")
    page = models_project / "runbooks" / "ModelAvailabilityLow.md"
    page.write_text(page.read_text() + "\nSee [the old runbook](ModelAvailabilityDown.md).\n")

    result = mkdocs_build(models_project, tmp_path / "site")

    assert result.returncode != 0
    assert "ModelAvailabilityDown.md" in result.stdout + result.stderr


CUSTOM_WINDOWS = """\
version: modelmon/v1
service: custom
slos:
  - name: latency
    objective: 99
    sli:
      latency:
        threshold_ms: 5000
    alerting:
      windows:
        - {severity: page, long: 2h, short: 10m, budget_percent: 4}
        - {severity: ticket, long: 2d, short: 4h, budget_percent: 10}
  - name: availability
    objective: 99.5
    sli:
      availability: {}
"""


def test_pages_query_only_ratios_their_slo_records_with_custom_windows(project):
    """An SLO with its own windows records 5m, 10m, 2h, 4h, 2d and 30d: no page may ask for its 1h."""
    compiled = build.compile_all(project({"custom.yaml": CUSTOM_WINDOWS}))
    rules = yaml.safe_load(compiled.files["rules/custom.yml"])
    recorded = {
        (rule["labels"]["slo"], rule["record"])
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("record", "").startswith("slo:sli_error:ratio_rate")
    }
    assert ("latency", "slo:sli_error:ratio_rate1h") not in recorded  # the case that broke
    read = set()
    for path, text in compiled.files.items():
        if not path.startswith("runbooks/") or path.endswith("index.md"):
            continue
        for record, selector in re.findall(r"(slo:sli_error:ratio_rate\w+)(\{[^}]*\})", text):
            read.add((re.search(r'slo="([^"]+)"', selector).group(1), record))
        for alternatives, selector in re.findall(r'__name__=~"slo:sli_error:ratio_rate\(([^)]*)\)",([^}]*)\}', text):
            slo = re.search(r'slo="([^"]+)"', selector).group(1)
            read.update((slo, f"slo:sli_error:ratio_rate{w}") for w in alternatives.split("|"))
    assert {slo for slo, _ in read} == {"latency", "availability"}
    assert read - recorded == set()
    assert ("latency", "slo:sli_error:ratio_rate2h") in read  # its failover query reads its page window
