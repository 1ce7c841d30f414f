"""Sloth's input forms read as Sloth reads them: several services in one file, the Kubernetes
PrometheusServiceLevel and AlertWindows resources, label values YAML would read as numbers,
alert names shared across services, SLI plugins refused by name."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from modelmon import build, cli, promtool, vmalert
from modelmon.loader import SpecErrors
from tests.test_sloth import SLOTH_EXAMPLE
from tests.test_validation import at

# SLOTH_EXAMPLE as a Kubernetes resource: the same spec under `spec`, its fields in camelCase.
K8S_EXAMPLE = """
apiVersion: sloth.slok.dev/v1
kind: PrometheusServiceLevel
metadata:
  name: sloth-slo-my-service
  namespace: monitoring
spec:
  service: "myservice"
  labels:
    owner: "myteam"
    repo: "myorg/myservice"
    tier: "2"
  slos:
    - name: "requests-availability"
      objective: 99.9
      description: "Common SLO based on availability for HTTP request responses."
      sli:
        events:
          errorQuery: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
          totalQuery: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
      alerting:
        name: MyServiceHighErrorRate
        labels:
          category: "availability"
        annotations:
          summary: "High error rate on 'myservice' requests responses"
        pageAlert:
          labels:
            severity: pageteam
            routing_key: myteam
        ticketAlert:
          labels:
            severity: "slack"
            slack_channel: "#alerts-myteam"
""".lstrip()


def events_service(service: str, alert: str = "RequestsBurn", extra: str = "") -> str:
    """A prometheus/v1 file of one events SLO; `extra` goes on in its alerting block (6 spaces in)."""
    window = "{{.window}}"
    return (
        "version: prometheus/v1\n"
        f"service: {service}\n"
        "slos:\n"
        "  - name: requests\n"
        "    objective: 99.9\n"
        "    sli:\n"
        "      events:\n"
        f'        error_query: sum(rate(http_requests_total{{job="{service}",code=~"5.."}}[{window}]))\n'
        f'        total_query: sum(rate(http_requests_total{{job="{service}"}}[{window}]))\n'
        "    alerting:\n"
        f"      name: {alert}\n"
        f"{extra}"
    )


def errors(root) -> list[str]:
    try:
        build.load_all(root)
    except SpecErrors as err:
        return [str(e) for e in err.errors]
    return []


def rules_of(compiled, service: str) -> list[dict]:
    groups = yaml.safe_load(compiled.files[f"rules/{service}.yml"])["groups"]
    return [rule for group in groups for rule in group["rules"]]


# --- several services in one file ---------------------------------------------------------


def test_each_document_of_a_file_is_a_service_of_its_own(project):
    text = "---\n" + events_service("alpha", "AlphaBurn") + "---\n\n---\n" + events_service("beta", "BetaBurn")
    compiled = build.compile_all(project({"two.yaml": text}))
    assert [s.service for s in compiled.project.services] == ["alpha", "beta"]
    assert {r.get("alert") for r in rules_of(compiled, "alpha")} >= {"AlphaBurn"}
    assert {r.get("alert") for r in rules_of(compiled, "beta")} >= {"BetaBurn"}
    # Both rule files name the one spec file they come from.
    assert "slos/two.yaml" in compiled.files["rules/beta.yml"].splitlines()[0]


def test_an_error_in_a_later_document_is_placed_at_its_line_in_the_file(project):
    second = events_service("beta").replace("objective: 99.9", "objective: 100.5")
    text = events_service("alpha") + "---\n" + second
    assert errors(project({"two.yaml": text})) == [
        f"slos/two.yaml:{at(text, '100.5')}: slos[0].objective: must be between 0 and 100 exclusive (got 100.5)"
    ]


def test_a_service_defined_twice_in_one_file_names_the_line_of_the_first(project):
    text = events_service("alpha", "A") + "---\n" + events_service("alpha", "B")
    assert errors(project({"two.yaml": text})) == [
        f"slos/two.yaml:{at(text, 'service: alpha', 'alpha', occurrence=2)}: service: service 'alpha' is also "
        f"defined in slos/two.yaml:{at(text, 'service: alpha', 'alpha')}; each service compiles to its own rules file"
    ]


def test_a_file_of_empty_documents_is_empty(project):
    assert errors(project({"x.yaml": "---\n---\n"})) == [
        "slos/x.yaml:1:1: the file is empty; expected a mapping with version, service and slos"
    ]


# --- the Kubernetes resources --------------------------------------------------------------


def test_a_plugin_key_misspelt_in_a_resource_is_suggested_as_the_plugin_spells_it(project):
    """A PrometheusServiceLevel spells its own fields in camelCase, its plugins' config as the plugin
    reads it: the budget plugin's `alert_name`, which would be refused as `alertName`."""
    plugin = "      plugins:\n        chain:\n          - id: sloth.dev/contrib/error_budget_exhausted_alert/v1\n"
    plugin += "            config: {alert_nme: Spent}\n"
    text = K8S_EXAMPLE.replace("      alerting:\n", plugin + "      alerting:\n", 1)
    assert errors(project({"x.yaml": text})) == [
        f"slos/x.yaml:{at(text, 'alert_nme')}: spec.slos[0].plugins.chain[0].config.alert_nme: unknown field "
        "'alert_nme'; did you mean 'alert_name'?"
    ]
    assert errors(project({"x.yaml": text.replace("alert_nme", "alert_name")})) == []


def test_a_prometheus_service_level_compiles_to_the_rules_of_the_same_prometheus_v1_file(project, tmp_path):
    plain = build.compile_all(project({"myservice.yaml": SLOTH_EXAMPLE}))
    (tmp_path / "slos" / "myservice.yaml").write_text(K8S_EXAMPLE)
    resource = build.compile_all(tmp_path)
    assert resource.files["rules/myservice.yml"] == plain.files["rules/myservice.yml"]
    burn = [r for r in rules_of(resource, "myservice") if r.get("alert") == "MyServiceHighErrorRate"]
    assert {r["labels"]["severity"] for r in burn} == {"pageteam", "slack"}


def test_a_resource_field_in_the_wrong_spelling_is_placed_and_spelt_as_the_file_spells_fields(project):
    text = K8S_EXAMPLE.replace("pageAlert:", "pageAlrt:").replace("ticketAlert:", "ticket_alert:")
    assert errors(project({"x.yaml": text})) == [
        f"slos/x.yaml:{at(text, 'pageAlrt')}: spec.slos[0].alerting.pageAlrt: unknown field 'pageAlrt'; "
        "did you mean 'pageAlert'?",
        f"slos/x.yaml:{at(text, 'ticket_alert')}: spec.slos[0].alerting.ticket_alert: unknown field 'ticket_alert'; "
        f"did you mean 'ticketAlert'? A PrometheusServiceLevel spells its fields in camelCase (Sloth ignores this one)",
    ]


def test_a_resource_value_error_names_the_field_as_the_file_spells_it(project):
    text = K8S_EXAMPLE.replace('code=~"(5..|429)"}[{{.window}}]', 'code=~"(5..|429)"}[5m]')
    [error] = errors(project({"x.yaml": text}))
    assert error.startswith(f"slos/x.yaml:{at(text, 'errorQuery: sum', 'sum')}: spec.slos[0].sli.events.errorQuery: ")


def test_a_resource_of_another_kind_is_refused_naming_what_is_read(project):
    text = "apiVersion: sloth.slok.dev/v1\nkind: ServiceLevel\nspec: {}\n"
    assert errors(project({"x.yaml": text})) == [
        "slos/x.yaml:1:1: apiVersion 'sloth.slok.dev/v1' with kind 'ServiceLevel' is not a form modelmon reads; "
        "expected `version: modelmon/v1` or `version: prometheus/v1` (Sloth), `apiVersion: sloth.slok.dev/v1` "
        "with kind PrometheusServiceLevel or AlertWindows, or `apiVersion: openslo/v1alpha or openslo/v1`"
    ]


SEVEN_DAYS = """
apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 7d
  page:
    quick: {errorBudgetPercent: 8, shortWindow: 5m, longWindow: 1h}
    slow: {errorBudgetPercent: 12.5, shortWindow: 30m, longWindow: 6h}
  ticket:
    quick: {errorBudgetPercent: 20, shortWindow: 2h, longWindow: 1d}
    slow: {errorBudgetPercent: 42, shortWindow: 6h, longWindow: 3d}
""".lstrip()


def test_alert_windows_give_the_slos_of_their_period_their_burn_rate_windows(project):
    weekly = events_service("weekly").replace("objective: 99.9", "objective: 99.9\n    period: 7d")
    monthly = events_service("monthly")
    compiled = build.compile_all(project({"weekly.yaml": weekly, "monthly.yaml": monthly, "7d.yaml": SEVEN_DAYS}))
    [plan] = compiled.plans["weekly"]
    # Factors as Sloth derives them: budget share x period / long window (8% x 168h / 1h = 13.44).
    assert [(a.long, a.short, a.factor) for a in plan.burn_alerts] == [
        ("1h", "5m", Decimal("13.44")),
        ("6h", "30m", Decimal("3.5")),
        ("1d", "2h", Decimal("1.4")),
        ("3d", "6h", Decimal("0.98")),
    ]
    # SLOs of other periods keep the defaults.
    [monthly_plan] = compiled.plans["monthly"]
    assert [a.factor for a in monthly_plan.burn_alerts] == [Decimal(f) for f in ("14.4", "6", "3", "1")]


def test_an_slo_with_windows_of_its_own_keeps_them_beside_alert_windows(project):
    own = events_service(
        "weekly", extra="      windows:\n        - {severity: page, long: 2h, short: 10m, budget_percent: 5}\n"
    ).replace("objective: 99.9", "objective: 99.9\n    period: 7d")
    [plan] = build.compile_all(project({"weekly.yaml": own, "7d.yaml": SEVEN_DAYS})).plans["weekly"]
    assert [(a.long, a.short) for a in plan.burn_alerts] == [("2h", "10m")]


def test_alert_windows_are_checked_where_they_are_written(project):
    text = SEVEN_DAYS.replace("shortWindow: 5m, longWindow: 1h", "shortWindow: 2h, longWindow: 1h").replace(
        "longWindow: 3d", "longWindow: 8d"
    )
    twice = SEVEN_DAYS
    assert errors(project({"a.yaml": text, "b.yaml": twice})) == [
        f"slos/a.yaml:{at(text, 'shortWindow: 2h', '2h')}: spec.page.quick.shortWindow: "
        "must be shorter than longWindow (1h)",
        f"slos/a.yaml:{at(text, 'longWindow: 8d', '8d')}: spec.ticket.slow.longWindow: "
        "must be shorter than sloPeriod (7d)",
    ]
    assert errors(project({"a.yaml": SEVEN_DAYS, "b.yaml": twice})) == [
        f"slos/b.yaml:{at(twice, '7d')}: spec.sloPeriod: the windows of a 7d period are also defined in "
        f"slos/a.yaml:{at(SEVEN_DAYS, '7d')}"
    ]


# --- label values, alert names, plugins ---------------------------------------------------


def test_label_values_yaml_reads_as_numbers_or_booleans_are_the_text_sloth_makes_of_them(project):
    # Measured with Sloth 0.16.0: it reads YAML into JSON, then each value into a string.
    values = {"tier": "2", "generated": "true", "on": "yes", "le": "0.20", "hex": "0x1F", "million": "1000000.0"}
    values |= {"under": "1_000", "since": "2024-01-31"}
    block = "".join(f"  {name}: {value}\n" for name, value in values.items())
    text = events_service("svc").replace("slos:", f"labels:\n{block}slos:")
    [rule, *_] = rules_of(build.compile_all(project({"svc.yaml": text})), "svc")
    assert {name: rule["labels"][name] for name in values} == {
        "tier": "2",
        "generated": "true",
        "on": "true",
        "le": "0.2",
        "hex": "31",
        "million": "1e+06",
        "under": "1000",
        "since": "2024-01-31",  # a date: as written
    }


def test_an_alert_name_shared_by_two_services_links_each_slo_to_its_own_runbook(project):
    text = events_service("alpha", "HighErrorRate") + "---\n" + events_service("beta", "HighErrorRate")
    compiled = build.compile_all(project({"two.yaml": text}))
    for service in ("alpha", "beta"):
        burn = [r for r in rules_of(compiled, service) if r.get("alert") == "HighErrorRate"]
        assert {r["annotations"]["runbook_url"] for r in burn} == {
            f"http://localhost:8001/runbooks/HighErrorRate/{service}/requests/"
        }
        page = compiled.files[f"runbooks/HighErrorRate/{service}/requests/index.md"]
        assert f"SLO `requests` of `{service}`" in page
        assert "[all runbooks](../../../index.md)" in page
    index = compiled.files["runbooks/index.md"]
    assert "[HighErrorRate](HighErrorRate/alpha/requests/index.md)" in index
    assert "[HighErrorRate](HighErrorRate/beta/requests/index.md)" in index
    # Names no other service uses keep their page at the top.
    assert "runbooks/AlphaRequestsOutage.md" in compiled.files


def test_events_slos_of_one_service_may_share_an_alert_name_and_their_tests_pass(project, capsys):
    """Sloth's contrib-slo-plugins example: two SLOs of one service, the same queries, one alert
    name. Each events SLI's tests feed its own recorded rates, which the other's rules never read,
    so neither SLO's tests see the other's alerts (plain promtool runs them whole)."""
    one = events_service("svc", "HighErrorRate")
    slo = one.split("slos:\n", 1)[1]
    text = one + slo.replace("name: requests", "name: requests-again")
    root = project({"svc.yaml": text})
    compiled = build.compile_all(root)
    for name in ("requests", "requests-again"):
        burn = [r for r in rules_of(compiled, "svc") if r.get("alert") == "HighErrorRate" and r["expr"].count(name)]
        assert {r["annotations"]["runbook_url"] for r in burn} >= {
            f"http://localhost:8001/runbooks/HighErrorRate/svc/{name}/"
        }
        assert f"runbooks/HighErrorRate/svc/{name}/index.md" in compiled.files
    assert cli.main(["--root", str(root), "build"]) == 0
    assert cli.main(["--root", str(root), "test", "--whole-files"]) == 0, capsys.readouterr().err


def test_an_alert_name_with_dashes_as_sloth_writes_them_has_its_page_route_and_passing_tests(project, capsys):
    """Sloth's victoria-metrics example names its alert slo_foo-bar_..._fail: Prometheus 2 and 3 load
    it (a label value), and the runbook page, its link and the generated tests carry it as it is."""
    name = "slo_foo-bar_requests-99_fail"
    root = project({"svc.yaml": events_service("svc", name)})
    compiled = build.compile_all(root)
    burn = [r for r in rules_of(compiled, "svc") if r.get("alert") == name]
    assert burn and {r["annotations"]["runbook_url"] for r in burn} == {f"http://localhost:8001/runbooks/{name}/"}
    assert f"runbooks/{name}.md" in compiled.files
    assert f"alertname: {name}" in compiled.files["prometheus/tests/svc.test.yml"]
    assert cli.main(["--root", str(root), "build"]) == 0
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["slo foo", "slo/foo", "-slo", "slo.foo"])
def test_an_alert_name_beyond_letters_digits_underscores_and_dashes_is_refused(project, name):
    text = events_service("svc", f"'{name}'")
    [error] = errors(project({"svc.yaml": text}))
    assert error.endswith(
        f"slos[0].alerting.name: must be an alert name like ModelAvailabilityBudgetBurn (got {name!r})"
    )


def test_an_slo_that_reads_records_may_not_share_an_alert_name_in_its_service(project):
    """A raw SLI over another SLO's error ratio: the other's test traffic drives it too."""
    one = events_service("svc", "HighErrorRate")
    reader = (
        "  - name: reader\n    objective: 99.99\n    sli:\n      raw:\n"
        '        error_ratio_query: slo:sli_error:ratio_rate{{.window}}{service="svc",slo="requests"}\n'
        "    alerting:\n      name: HighErrorRate\n"
    )
    found = errors(project({"svc.yaml": one + reader}))
    assert len(found) == 1 and "alert name 'HighErrorRate' is already used by SLO 'requests'" in found[0], found


def test_sloth_slo_without_pages_or_tickets_has_no_alert(project):
    # Sloth's no-alerts example: page and ticket alerts disabled, so nothing may page.
    text = events_service("svc", extra="      page_alert: {disable: true}\n      ticket_alert: {disable: true}\n")
    [plan] = build.compile_all(project({"svc.yaml": text})).plans["svc"]
    assert plan.alerts() == ()


# --- SLO plugins -------------------------------------------------------------------------


def test_plugins_that_change_no_rule_leave_the_rules_as_they_are(project, tmp_path):
    plain = build.compile_all(project({"svc.yaml": events_service("svc")})).files["rules/svc.yml"]
    chain = (
        "slo_plugins:\n  chain:\n    - {id: sloth.dev/core/debug/v1, priority: 100, config: {msg: hi}}\n"
        "    - {id: sloth.dev/contrib/denominator_corrected_rules/v1}\nslos:"
    )
    text = events_service("svc").replace("slos:", chain)
    (tmp_path / "slos" / "svc.yaml").write_text(text)
    assert build.compile_all(tmp_path).files["rules/svc.yml"] == plain


def test_the_budget_exhausted_plugin_becomes_the_budget_alert(project):
    plugin = (
        "    plugins:\n      chain:\n        - id: sloth.dev/contrib/error_budget_exhausted_alert/v1\n"
        "          config: {alert_name: SvcBudgetGone, for: 10m, alert_labels: {team: core}}\n"
    )
    # Without pages the SLO would have no budget alert: the plugin asks for one.
    text = events_service("svc", extra="      page_alert: {disable: true}\n").replace(
        "    alerting:\n", plugin + "    alerting:\n"
    )
    [plan] = build.compile_all(project({"svc.yaml": text})).plans["svc"]
    [budget] = plan.budget_alerts
    assert (budget.name, budget.for_, budget.labels["team"], budget.labels["severity"]) == (
        "SvcBudgetGone",
        "10m",
        "core",
        "critical",
    )


@pytest.mark.parametrize(
    ("chain", "needle", "message"),
    [
        (
            "- {id: sloth.dev/contrib/remove_labels/v1, config: {labels: [team]}}",
            "sloth.dev/contrib/remove_labels/v1",
            "slos[0].plugins.chain[0].id: Sloth plugin 'sloth.dev/contrib/remove_labels/v1' is not supported: "
            "modelmon's rules keep every label of the SLO, which its tests and dashboards select by; leave the "
            "labels out of the spec instead",
        ),
        (
            "- {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {alert: 1m}}}",
            "{alert",
            "slos[0].plugins.chain[0].config.interval.default: is required",
        ),
        (
            "- {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {default: 0s}}}",
            "0s",
            "slos[0].plugins.chain[0].config.interval.default: must be longer than 0s",
        ),
        (
            "- {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {default: 5m, sliErorr: 1m}}}",
            "sliErorr",
            "slos[0].plugins.chain[0].config.interval.sliErorr: unknown field 'sliErorr'; did you mean 'sliError'?",
        ),
        (
            "- {id: acme/plugins/tiers/v1}",
            "acme/plugins/tiers/v1",
            "slos[0].plugins.chain[0].id: Sloth plugin 'acme/plugins/tiers/v1' is Go code modelmon cannot run; "
            "modelmon honours Sloth's core plugins and some contrib ones (docs/migration.md lists them)",
        ),
        (
            "- {id: sloth.dev/contrib/error_budget_exhausted_alert/v1, config: {threshold: 0.1}}",
            "0.1",
            "slos[0].plugins.chain[0].config.threshold: modelmon's budget-exhausted alert fires when the whole "
            "budget is spent (threshold 0); for an earlier warning, use a ticket burn-rate window",
        ),
        (
            "- {id: sloth.dev/contrib/error_budget_exhausted_alert/v1, config: {for: 5 minutes}}",
            "5 minutes",
            "slos[0].plugins.chain[0].config.for: '5 minutes' is not a duration like 30s, 5m, 1h30m or 30d",
        ),
    ],
)
def test_plugins_modelmon_cannot_honour_are_refused_where_they_are_named(project, chain, needle, message):
    text = events_service("svc").replace(
        "    alerting:\n", f"    plugins:\n      chain:\n        {chain}\n    alerting:\n"
    )
    assert errors(project({"svc.yaml": text})) == [f"slos/svc.yaml:{at(text, needle)}: {message}"]


def intervals_plugin(interval: str) -> str:
    plugin = f"        - {{id: sloth.dev/contrib/rule_intervals/v1, config: {{interval: {interval}}}}}\n"
    return events_service("svc").replace("    alerting:\n", f"    plugins:\n      chain:\n{plugin}    alerting:\n")


@pytest.mark.parametrize(
    ("interval", "sli", "meta", "alerts"),
    [("{default: 5m}", "5m", "5m", "5m"), ("{default: 2m, sliError: 42s, alert: 1m}", "42s", "2m", "1m")],
)
def test_the_rule_intervals_plugin_sets_the_intervals_of_the_slos_own_groups(
    project, capsys, interval, sli, meta, alerts
):
    """As Sloth's plugin does, for the SLO's error ratios, metadata and alerts: the ratios move to a
    group of their own (the rates they divide, shared, stay in the service's); the long windows stay
    in the 1m group that averages the tiles. The generated tests, evaluated every minute as promtool
    evaluates every group, in file order, still pass."""
    root = project({"svc.yaml": intervals_plugin(interval)})
    compiled = build.compile_all(root)
    groups = {g["name"]: g for g in yaml.safe_load(compiled.files["rules/svc.yml"])["groups"]}
    assert list(groups) == [
        "svc-sli",
        "svc-requests-sli",
        "svc-sli-tiles",
        "svc-sli-long",
        "svc-requests-meta",
        "svc-requests-alerts",
    ]
    intervals = {name: group.get("interval") for name, group in groups.items()}
    assert intervals == {
        "svc-sli": None,
        "svc-requests-sli": sli,
        "svc-sli-tiles": "5m",
        "svc-sli-long": "1m",
        "svc-requests-meta": meta,
        "svc-requests-alerts": alerts,
    }
    ratios = [r["record"] for r in groups["svc-requests-sli"]["rules"]]
    assert ratios == [
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30m",
        "slo:sli_error:ratio_rate1h",
        "slo:sli_error:ratio_rate2h",
    ]
    assert not any(r["record"].startswith("slo:sli_error:") for r in groups["svc-sli"]["rules"])
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


def test_the_last_rule_intervals_plugin_of_the_chain_sets_every_group_it_names(project):
    """Sloth runs the file's plugins, then the SLO's: the SLO's plugin sets each group again (its
    default standing for the keys it leaves out), so none of the file's intervals survive; a
    lower priority runs it first, and the file's plugin wins."""
    text = intervals_plugin("{default: 3m}").replace(
        "slos:\n",
        "slo_plugins:\n  chain:\n    - {id: sloth.dev/contrib/rule_intervals/v1, "
        "config: {interval: {default: 2m, alert: 1m, sliError: 30s}}}\nslos:\n",
        1,
    )
    compiled = build.compile_all(project({"svc.yaml": text}))
    groups = {g["name"]: g.get("interval") for g in yaml.safe_load(compiled.files["rules/svc.yml"])["groups"]}
    assert (groups["svc-requests-sli"], groups["svc-requests-meta"], groups["svc-requests-alerts"]) == ("3m",) * 3
    alone = build.compile_all(
        project(
            {
                "svc.yaml": text.replace(
                    "config: {interval: {default: 3m}}", "priority: -1, config: {interval: {default: 3m}}"
                )
            }
        )
    )
    first = {g["name"]: g.get("interval") for g in yaml.safe_load(alone.files["rules/svc.yml"])["groups"]}
    assert (first["svc-requests-sli"], first["svc-requests-meta"], first["svc-requests-alerts"]) == ("30s", "2m", "1m")


@pytest.mark.parametrize(
    ("interval", "key", "needle", "readers"),
    [
        (
            "{default: 1m, sliError: 10m}",
            "sliError",
            "10m",
            "the burn-rate alerts and records (and a raw SLI's tiles) that read its error ratios",
        ),
        (
            "{default: 1m, metadata: 6m}",
            "metadata",
            "6m",
            "the budget-exhausted alert and the dashboard panels that read its metadata",
        ),
        (
            "{default: 10m, alert: 1m}",
            "default",
            "10m",
            "the burn-rate alerts and records (and a raw SLI's tiles) that read its error ratios and the "
            "budget-exhausted alert and the "
            "dashboard panels that read its metadata",
        ),
    ],
)
def test_an_interval_other_rules_would_outwait_is_refused_where_it_is_set(project, interval, key, needle, readers):
    """A record written every 10m is gone, for an instant query, 5m after each evaluation (Prometheus'
    lookback): a burn-rate alert reading it would reset its `for` every other evaluation."""
    text = intervals_plugin(interval)
    assert errors(project({"svc.yaml": text})) == [
        f"slos/svc.yaml:{at(text, needle)}: slos[0].plugins.chain[0].config.interval.{key}: an interval of "
        f"{needle} is longer than Prometheus' 5m lookback: {readers} would find nothing between two "
        "evaluations; use 5m or less"
    ]


def test_an_interval_a_later_plugin_overrides_is_not_judged_against_the_lookback(project):
    """The file's 10m never reaches a group: the SLO's own plugin, run after it, sets every group
    again (and so does the second of two plugins in one chain)."""
    file_level = intervals_plugin("{default: 1m}").replace(
        "slos:\n",
        "slo_plugins:\n  chain:\n    - {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {default: 10m}}}\n"
        "slos:\n",
        1,
    )
    assert errors(project({"svc.yaml": file_level})) == []
    twice = intervals_plugin("{default: 10m}").replace(
        "    alerting:\n",
        "        - {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {default: 2m}}}\n    alerting:\n",
        1,
    )
    assert errors(project({"svc.yaml": twice})) == []
    assert len(errors(project({"svc.yaml": twice.replace("default: 2m", "default: 6m")}))) == 1


def test_only_the_alerts_may_be_evaluated_less_often_than_the_lookback(project):
    """Nothing reads an alert rule's output; Prometheus keeps a firing alert alive at Alertmanager for
    4 evaluation intervals, so a 10m alert group pages late, never falsely resolved."""
    assert errors(project({"svc.yaml": intervals_plugin("{default: 5m, alert: 10m}")})) == []


def test_a_chain_that_replaces_sloths_without_its_alert_rules_is_refused(project):
    chain = (
        "slo_plugins:\n  overridePrevious: true\n  chain:\n    - {id: sloth.dev/core/sli_rules/v1}\n"
        "    - {id: sloth.dev/core/metadata_rules/v1}\nslos:"
    )
    text = events_service("svc").replace("slos:", chain)
    assert errors(project({"svc.yaml": text})) == [
        f"slos/svc.yaml:{at(text, 'true')}: slo_plugins.overridePrevious: this chain replaces Sloth's without "
        "sloth.dev/core/alert_rules/v1, so Sloth would write none of their rules; modelmon always writes its SLI, "
        "metadata and alert rules: add them to the chain, or disable alerts with alerting.page_alert and ticket_alert"
    ]


def test_an_error_in_windows_taken_from_alert_windows_points_at_the_alert_windows(project):
    weekly = events_service("weekly").replace("objective: 99.9", "objective: 99\n    period: 7d")
    # 100 % of the budget in an hour of a week is a burn no outage reaches (168 x 1 % > 100 %).
    windows = SEVEN_DAYS.replace("errorBudgetPercent: 8,", "errorBudgetPercent: 100,")
    [error] = errors(project({"weekly.yaml": weekly, "7d.yaml": windows}))
    assert error.startswith(
        f"slos/7d.yaml:{at(windows, 'errorBudgetPercent: 100', '100')}: spec.page.quick.errorBudgetPercent: "
        "the 1h/5m page alert fires above an error ratio of 168 x 1% = 168%"
    ), error
    assert error.endswith("(the windows of SLO slos[0] in slos/weekly.yaml, period 7d)")


def test_a_missing_field_of_a_resource_is_named_as_the_file_would_spell_it(project):
    text = K8S_EXAMPLE.replace(
        '          totalQuery: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))\n', ""
    )
    assert errors(project({"x.yaml": text})) == [
        f"slos/x.yaml:{at(text, 'errorQuery')}: spec.slos[0].sli.events.totalQuery: is required"
    ]


def test_a_merge_of_several_blocks_in_a_resource_is_read_in_its_spelling(project):
    text = K8S_EXAMPLE.replace(
        "      alerting:\n        name: MyServiceHighErrorRate\n",
        "      alerting:\n        <<: [{pageAlert: {labels: {a: b}}}, {ticketAlert: {disable: true}}]\n"
        "        name: MyServiceHighErrorRate\n",
    ).replace(
        "        pageAlert:\n          labels:\n            severity: pageteam\n            routing_key: myteam\n", ""
    )
    ticket = '        ticketAlert:\n          labels:\n            severity: "slack"\n'
    ticket += '            slack_channel: "#alerts-myteam"\n'
    text = text.replace(ticket, "")
    [plan] = build.compile_all(project({"x.yaml": text})).plans["myservice"]
    assert {a.kind for a in plan.burn_alerts} == {"page"}
    assert plan.burn_alerts[0].labels["a"] == "b"


def test_a_resource_with_two_specs_is_refused(project):
    text = K8S_EXAMPLE + 'spec:\n  service: "second"\n'
    assert errors(project({"x.yaml": text})) == [
        f"slos/x.yaml:{at(text, 'spec:', occurrence=2)}: spec: duplicate key 'spec'"
    ]


def test_a_runbook_page_of_a_shared_alert_name_goes_when_its_slo_does(project):
    text = events_service("alpha", "HighErrorRate") + "---\n" + events_service("beta", "HighErrorRate")
    root = project({"two.yaml": text})
    build.write_all(root, build.compile_all(root))
    assert (root / "runbooks/HighErrorRate/beta/requests/index.md").is_file()
    (root / "slos/two.yaml").write_text(text.replace("- name: requests", "- name: calls"))
    assert "runbooks/HighErrorRate/beta/requests/index.md" in build.orphans(root, build.compile_all(root).files)


def test_generate_writes_each_service_of_a_file_and_reads_the_projects_alert_windows(project, capsys, monkeypatch):
    from modelmon import cli

    weekly = events_service("weekly").replace("objective: 99.9", "objective: 99.9\n    period: 7d")
    two = events_service("alpha") + "---\n" + events_service("beta")
    root = project({"weekly.yaml": weekly, "two.yaml": two, "7d.yaml": SEVEN_DAYS})
    monkeypatch.chdir(root)
    # As a build compiles it: the page of the 1h/5m pair at 8 % of a week's budget (13.44 x 0.1 %).
    assert cli.main(["generate", "-i", "slos/weekly.yaml"]) == 0
    assert "> 0.01344" in capsys.readouterr().out
    assert cli.main(["generate", "-i", "slos/two.yaml"]) == cli.EXIT_USAGE
    assert "several services (specs, a folder or documents) need -o FOLDER" in capsys.readouterr().err
    assert cli.main(["generate", "-i", "slos/two.yaml", "-o", "out/"]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote out/alpha.yml", "wrote out/beta.yml"]
    assert cli.main(["generate", "-i", "slos/7d.yaml"]) == cli.EXIT_USAGE
    assert "hold no SLO" in capsys.readouterr().err


def test_a_replacing_chain_is_judged_with_the_slos_own_plugins_after_it(project):
    # Sloth writes every rule here: the file's chain replaces the default, the SLO's adds the rule plugins.
    chain = "slo_plugins:\n  overridePrevious: true\n  chain:\n    - {id: sloth.dev/core/validate/v1}\nslos:"
    own = "".join(
        f"        - {{id: sloth.dev/core/{name}/v1}}\n" for name in ("sli_rules", "metadata_rules", "alert_rules")
    )
    text = (
        events_service("svc")
        .replace("slos:", chain)
        .replace("    alerting:\n", f"    plugins:\n      chain:\n{own}    alerting:\n")
    )
    [plan] = build.compile_all(project({"svc.yaml": text})).plans["svc"]
    assert plan.burn_alerts


def test_the_budget_plugin_reads_a_for_of_zero_as_its_default(project):
    plugin = (
        "    plugins:\n      chain:\n        - id: sloth.dev/contrib/error_budget_exhausted_alert/v1\n"
        "          config: {for: 0s}\n"
    )
    text = events_service("svc").replace("    alerting:\n", plugin + "    alerting:\n")
    [plan] = build.compile_all(project({"svc.yaml": text})).plans["svc"]
    assert [b.for_ for b in plan.budget_alerts] == ["5m"]


def test_a_project_of_alert_windows_alone_says_it_has_no_slo(project):
    assert errors(project({"7d.yaml": SEVEN_DAYS})) == [
        "slos:1:1: the spec files hold Sloth AlertWindows and no SLO: nothing to compile"
    ]


# --- MetricsQL: Sloth's validate_victoria_metrics plugin -----------------------------------

# Sloth's victoria-metrics example, shortened: a latency SLI VictoriaMetrics alone can read.
METRICSQL = """\
version: prometheus/v1
service: grpc
slo_plugins:
  chain:
    - id: sloth.dev/contrib/validate_victoria_metrics/v1
slos:
  - name: latency
    objective: 99
    sli:
      events:
        error_query: 1 - histogram_share(0.2, sum by (vmrange) (rate(requests_duration_seconds_bucket[{{.window}}])))
        total_query: vector(1)[{{.window}}]
    alerting:
      name: GrpcLatency
"""
HISTOGRAM_SHARE = "1 - histogram_share(0.2, sum by (vmrange) (rate(requests_duration_seconds_bucket[5m])))"


def test_metricsql_slis_compile_for_vmalert_and_their_tests_run_on_a_stand_in_for_each_query(project, capsys):
    """The rules keep the MetricsQL queries, which vmalert loads; promtool cannot parse them, so the
    generated tests load the same rules with each query stood in by one that records nothing, as the
    queries do on the tests' input series (which give what they record), and pass."""
    root = project({"grpc.yaml": METRICSQL})
    compiled = build.compile_all(root)
    rules = yaml.safe_load(compiled.files["rules/grpc.yml"])["groups"]
    stand_in_text = compiled.files["prometheus/tests/promtool-rules/grpc.yml"]
    stood_in = yaml.safe_load(stand_in_text)["groups"]
    real = {(g["name"], i): r for g in rules for i, r in enumerate(g["rules"])}
    test = {(g["name"], i): r for g in stood_in for i, r in enumerate(g["rules"])}
    changed = {key: rule["record"] for key, rule in real.items() if rule != test[key]}
    assert real.keys() == test.keys() and len(changed) == 8  # both queries, each of the 4 windows under 6h
    assert set(changed.values()) == {
        f"slo:sli_{kind}_events:rate{w}" for kind in ("error", "total") for w in ("5m", "30m", "1h", "2h")
    }
    assert all(test[key]["expr"] == "vector(1) unless vector(1)\n" for key in changed)
    assert any(r.get("expr") == HISTOGRAM_SHARE + "\n" for r in real.values())
    tests = yaml.safe_load(compiled.files["prometheus/tests/grpc.test.yml"])
    assert tests["rule_files"] == ["promtool-rules/grpc.yml"]
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    vmalert = subprocess.run(
        ["vmalert", "-dryRun", f"-rule={root / 'rules' / 'grpc.yml'}"], capture_output=True, text=True, check=False
    )
    assert vmalert.returncode == 0, vmalert.stderr
    ok, _, output = promtool.check_rules([root / "rules" / "grpc.yml"])
    assert not ok and "histogram_share" in output  # why the tests need the stand-in
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err
    # Without the plugin the stand-in goes, and the tests load the rules themselves again.
    (root / "slos" / "grpc.yaml").write_text(events_service("grpc", "GrpcLatency"))
    assert cli.main(["--root", str(root), "build"]) == 0
    assert "removed prometheus/tests/promtool-rules/grpc.yml" in capsys.readouterr().out
    assert yaml.safe_load((root / "prometheus/tests/grpc.test.yml").read_text())["rule_files"] == [
        "../../rules/grpc.yml"
    ]


def test_each_metricsql_query_vmalert_refuses_is_placed_at_its_field(project):
    """vmalert checks every query of the project in one run and names each it refuses: one error per
    field (a broken query fails in every window), each at the query that has it."""
    text = METRICSQL.replace("rate(requests_duration_seconds_bucket[{{.window}}])))", "rate(x[{{.window}}]))")
    text = text.replace("total_query: vector(1)[{{.window}}]", 'total_query: x{a="b" or a="c"}[{{.window}}]')
    error, total = errors(project({"grpc.yaml": text}))
    assert error.startswith(
        f"slos/grpc.yaml:{at(text, '1 - histogram_share')}: slos[0].sli.events.error_query: vmalert rejects "
    )
    assert error.endswith('argList: unexpected token ""; want ",", ")"; unparsed data: ""')
    assert total.startswith(f"slos/grpc.yaml:{at(text, 'x{a=')}: slos[0].sli.events.total_query: vmalert rejects ")
    assert total.endswith('labelFilters: unexpected token "or"; want ",", "}"; unparsed data: "or a=\\"c\\"}[5m]"')


def test_bad_metricsql_queries_in_two_documents_of_one_file_are_both_placed(project):
    """The same field of two services of one file is two places, not one."""
    bad = METRICSQL.replace("rate(requests_duration_seconds_bucket[{{.window}}])))", "rate(x[{{.window}}]))")
    text = bad + "---\n" + bad.replace("service: grpc", "service: grpc2").replace("GrpcLatency", "Grpc2Latency")
    found = errors(project({"grpc.yaml": text}))
    assert [e.split(": ")[0] for e in found] == [
        f"slos/grpc.yaml:{at(text, '1 - histogram_share')}",
        f"slos/grpc.yaml:{at(text, '1 - histogram_share', occurrence=2)}",
    ]


@pytest.mark.parametrize(
    ("program", "says"),
    [
        ("#!/bin/sh\nexit 1\n", "-dryRun exited with 1 without naming a query"),
        ("#!/bin/sh\necho 'flag provided but not defined: -dryRun' >&2\nexit 2\n", "flag provided but not defined"),
    ],
)
def test_a_vmalert_that_names_no_query_is_the_tools_failure_not_the_specs(
    project, tmp_path, monkeypatch, capsys, program, says
):
    """Another program behind MODELMON_VMALERT (or a broken vmalert) fails the build with its own
    words, never as an error in the SLO's query."""
    fake = tmp_path / "vmalert"
    fake.write_text(program)
    fake.chmod(0o755)
    monkeypatch.setenv("MODELMON_VMALERT", str(fake))
    root = project({"grpc.yaml": METRICSQL})
    assert cli.main(["--root", str(root), "validate"]) == cli.EXIT_SPEC
    err = capsys.readouterr().err
    assert f"modelmon: {fake} " in err and says in err and "slos/grpc.yaml" not in err


def test_a_vmalert_that_hangs_is_stopped_and_named(project, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "vmalert"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MODELMON_VMALERT", str(fake))
    monkeypatch.setattr(vmalert, "TIMEOUT_S", 1)
    assert cli.main(["--root", str(project({"grpc.yaml": METRICSQL})), "validate"]) == cli.EXIT_SPEC
    assert f"modelmon: {fake} -dryRun did not finish in 1 s" in capsys.readouterr().err


def test_the_runbook_of_a_metricsql_alert_sends_on_call_to_victoriametrics_not_prometheus(project):
    """Prometheus cannot parse the page's queries, nor has it the rules to show."""
    compiled = build.compile_all(project({"grpc.yaml": METRICSQL, "web.yaml": events_service("web", "WebBurn")}))
    metricsql, promql = compiled.files["runbooks/GrpcLatency.md"], compiled.files["runbooks/WebBurn.md"]
    assert "into vmui (Prometheus cannot parse them)" in metricsql and "vmalert's Groups page" in metricsql
    assert "Prometheus' Graph page" not in metricsql and "Prometheus' Rules page" not in metricsql
    assert "Prometheus' Graph page" in promql and "Prometheus' Rules page" in promql and "vmui" not in promql


def test_modelmon_test_never_hands_promtool_the_metricsql_rules(project, capsys):
    """The tests of a MetricsQL service load the stand-in copy: deleted, promtool is not handed the
    real rules (it cannot parse MetricsQL) and the user is told what to run; with the service's
    tests deleted instead, promtool still checks the stand-in, not the real rules."""
    root = project({"grpc.yaml": METRICSQL, "web.yaml": events_service("web", "WebBurn")})
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    stand_in = root / "prometheus/tests/promtool-rules/grpc.yml"
    kept = stand_in.read_text()
    stand_in.unlink()
    capsys.readouterr()
    assert cli.main(["--root", str(root), "test"]) == cli.EXIT_TESTS
    err = capsys.readouterr().err
    assert err.startswith("prometheus/tests/promtool-rules/grpc.yml, which prometheus/tests/grpc.")
    assert "loads, is missing; run `" in err and "histogram_share" not in err
    stand_in.write_text(kept)
    for test in (root / "prometheus" / "tests").glob("grpc*.test.yml"):
        test.unlink()
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


def test_without_the_plugin_a_metricsql_query_is_promtools_to_refuse(project):
    text = METRICSQL.replace(
        "    - id: sloth.dev/contrib/validate_victoria_metrics/v1\n", "    - id: sloth.dev/core/debug/v1\n"
    )
    found = errors(project({"grpc.yaml": text}))
    assert found and all("promtool rejects the generated rule" in e for e in found), found


def test_metricsql_slis_without_vmalert_say_what_to_install(project, monkeypatch, capsys):
    root = project({"grpc.yaml": METRICSQL})
    monkeypatch.setenv("MODELMON_VMALERT", str(root / "no-vmalert"))
    assert cli.main(["--root", str(root), "validate"]) != 0
    assert f"MODELMON_VMALERT={root / 'no-vmalert'} is not an executable file" in capsys.readouterr().err
    monkeypatch.delenv("MODELMON_VMALERT")
    monkeypatch.setenv("PATH", str(Path(promtool.find_promtool()).parent))  # promtool, and no vmalert
    assert cli.main(["--root", str(root), "validate"]) != 0
    assert "install Debian's victoria-metrics package (apt-get install -y victoria-metrics)" in capsys.readouterr().err


def test_metricsql_slis_are_not_backfilled_by_promtool(project, tmp_path, capsys):
    root = project({"grpc.yaml": METRICSQL})
    out = tmp_path / "blocks"
    assert (
        cli.main(["--root", str(root), "backfill", "--prometheus", "http://127.0.0.1:9", "--output-dir", str(out)])
        == cli.EXIT_USAGE
    )
    assert "slos/grpc.yaml: MetricsQL SLIs, which promtool cannot backfill, left out" in capsys.readouterr().err
    assert not out.exists()


def test_a_metricsql_service_leaves_the_other_services_to_backfill(project, tmp_path, capsys):
    """The PromQL service beside it is backfilled all the same: the run goes on to ask Prometheus
    (here a closed port) where the live tiles begin, for the other service's tiles."""
    root = project({"grpc.yaml": METRICSQL, "web.yaml": events_service("web")})
    out = tmp_path / "blocks"
    code = cli.main(["--root", str(root), "backfill", "--prometheus", "http://127.0.0.1:9", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert "slos/grpc.yaml: MetricsQL SLIs, which promtool cannot backfill, left out" in err
    assert code == cli.EXIT_BACKFILL and "127.0.0.1:9" in err, err


def test_a_raw_metricsql_sli_stands_in_for_its_ratio_query_and_its_tests_pass(project, capsys):
    """A raw SLI's ratio records are its own query: the stand-in replaces those (each window under
    6h); its 5m tile and long windows read the records, PromQL, and stay."""
    query = "1 - histogram_share(0.2, sum by (vmrange) (rate(x_bucket[{{.window}}])))"
    raw = f"      raw:\n        error_ratio_query: {query}\n"
    text = METRICSQL.split("      events:\n")[0] + raw + "    alerting:\n      name: GrpcLatency\n"
    root = project({"grpc.yaml": text})
    compiled = build.compile_all(root)
    stood_in = yaml.safe_load(compiled.files["prometheus/tests/promtool-rules/grpc.yml"])["groups"]
    replaced = [r["record"] for g in stood_in for r in g["rules"] if r.get("expr") == "vector(1) unless vector(1)\n"]
    assert replaced == [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h")]
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err


def test_raw_slis_with_their_own_intervals_leave_no_empty_shared_group(project, capsys):
    """A raw SLI has no shared rate: with the plugin its ratios leave the service's sli group empty."""
    query = "sum(rate(x_errors[{{.window}}])) / sum(rate(x_total[{{.window}}]))"
    raw = f"      raw:\n        error_ratio_query: {query}\n"
    plugin = intervals_plugin("{default: 2m}")
    text = plugin.split("      events:\n")[0] + raw + "    plugins:" + plugin.split("    plugins:", 1)[1]
    root = project({"svc.yaml": text})
    groups = [g["name"] for g in yaml.safe_load(build.compile_all(root).files["rules/svc.yml"])["groups"]]
    assert groups[:2] == ["svc-requests-sli", "svc-sli-tiles"]
    assert cli.main(["--root", str(root), "build"]) == 0, capsys.readouterr().err
    assert cli.main(["--root", str(root), "test"]) == 0, capsys.readouterr().err
