"""End to end: the real backend (gunicorn, two workers) behind a bearer token, scraped
by the real Prometheus (Debian's package) with the committed prometheus.yml and
rules, Alertmanager connected; every panel query of the generated dashboard runs
against it and must agree with the traffic the test sent. Then `modelmon doctor`
checks the same stack, and catches a wrong token.

Tolerances: the panels read rates over the guide's 5m window while the traffic lasts
about ten seconds, so `rate() x 300 s` is compared with the calls sent: within 3 %,
the most Prometheus' extrapolation to the window's edge adds here. Ratios (error
rate, availability, family shares) within 0.5 percentage points; average latency
exactly, since its sum and count are extrapolated alike.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from modelmon import cli, contract
from modelmon.outputs.dashboard import all_queries, as_sent
from stack import processes
from stack.config import local_prometheus_config, rules_at_one_interval
from tests import binaries

REPO = Path(__file__).resolve().parent.parent
BOARD = json.loads((REPO / "grafana" / "dashboards" / "models-monitoring.json").read_text())
TOKEN = "e2e-token-0123456789abcdef"
WINDOW_S = 300  # the dashboard's rate window
# Calls per model and their errors: every model different, one that never fails.
TRAFFIC = {
    model: {"calls": 60 + 20 * i, "errors": (0 if i == 0 else 2 + 3 * i), "latency_ms": 80.0 * (i + 1), "tokens": 7}
    for i, model in enumerate(contract.EXAMPLE_MODELS)
}
FAMILIES = {"Claude": "claude", "GPT": "gpt", "Gemini": "gemini", "Llama": "llama", "Mistral": "mistral"}


def family_of(model: str) -> str:
    return next(
        f for f, word in FAMILIES.items() if word in model.lower() or (f == "Mistral" and "mixtral" in model.lower())
    )


def post_calls(url: str, calls: list[dict]) -> None:
    request = urllib.request.Request(
        f"{url}/v1/calls", data=json.dumps(calls).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 202, 204), response.status


@pytest.fixture(scope="module", params=binaries.engines())
def stack(request, tmp_path_factory):
    """The stack on each engine: the pinned builds (as docker compose deploys) and Debian's."""
    engine = request.param()
    work = tmp_path_factory.mktemp("stack")
    token_file = work / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    backend_port, alertmanager_port = processes.free_port(), processes.free_port()
    multiproc = work / "multiproc"
    multiproc.mkdir()
    gunicorn, backend_env = processes.backend_command(backend_port, token_file, multiproc)
    alertmanager = processes.alertmanager_command(
        REPO / "alertmanager" / "alertmanager.yml", work / "alertmanager", alertmanager_port, engine["alertmanager"]
    )
    backend_url = f"http://127.0.0.1:{backend_port}"
    with (
        processes.process(gunicorn, work / "backend.log", env=backend_env, cwd=REPO),
        processes.process(alertmanager, work / "alertmanager.log"),
    ):
        processes.wait_until("the backend", lambda: urllib.request.urlopen(f"{backend_url}/healthz", timeout=2), 30)
        prometheus_port = processes.free_port()
        config = local_prometheus_config(
            prometheus_port=prometheus_port,
            backend_port=backend_port,
            alertmanager_port=alertmanager_port,
            token_file=token_file,
            interval="1s",
            rules_dir=rules_at_one_interval(REPO / "rules", work / "rules"),
        )
        with processes.prometheus(
            config, work / "prometheus", port=prometheus_port, binary=engine["prometheus"]
        ) as prom:
            at = send_traffic(backend_url, prom)
            yield {"prometheus": prom, "backend": backend_url, "token_file": token_file, "work": work, "at": at}


def send_traffic(backend_url: str, prom: str) -> float:
    """Send every model's calls over several scrapes; return the time of the last scrape that saw them.

    One warm-up call per model comes first and is scraped before the traffic, so every
    series starts in Prometheus near zero and rate() has almost nothing to extrapolate.
    Queries run at the last scrape's timestamp for the same reason.
    """

    def scraped(count: int) -> bool:
        result = processes.query(prom, f"sum({contract.REQUESTS_TOTAL})")
        return bool(result) and float(result[0]["value"][1]) == count

    warm_up = [{"model": m, "latency_ms": t["latency_ms"], "tokens": t["tokens"]} for m, t in TRAFFIC.items()]
    post_calls(backend_url, warm_up)
    processes.wait_until("Prometheus to scrape the warm-up calls", lambda: scraped(len(TRAFFIC)), 30)
    rounds = 8
    for r in range(rounds):
        batch = []
        for model, t in TRAFFIC.items():
            calls = t["calls"] // rounds + (1 if r < t["calls"] % rounds else 0)
            errors = t["errors"] // rounds + (1 if r < t["errors"] % rounds else 0)
            batch += [
                {"model": model, "latency_ms": t["latency_ms"], "tokens": t["tokens"], "error": n < errors}
                for n in range(calls)
            ]
        post_calls(backend_url, batch)
        time.sleep(1.1)
    total = len(TRAFFIC) + sum(t["calls"] for t in TRAFFIC.values())
    processes.wait_until("Prometheus to scrape every call", lambda: scraped(total), 30)
    time.sleep(2)  # two more scrapes, so the last one is at the end of every increase
    newest = processes.query(prom, f"max(timestamp({contract.REQUESTS_TOTAL}))")
    return float(newest[0]["value"][1])


def values(stack: dict, expr: str) -> dict[str, float]:
    result = processes.query(stack["prometheus"], expr, at=stack["at"])
    return {r["metric"].get("model", ""): float(r["value"][1]) for r in result}


def panel_expr(title: str) -> str:
    panel = next(p for p in BOARD["panels"] if p.get("title") == title)
    return as_sent(panel["targets"][0])


def test_backend_target_is_scraped_with_the_bearer_token(stack):
    targets = processes.get_json(f"{stack['prometheus']}/api/v1/targets")["data"]["activeTargets"]
    backend = next(t for t in targets if t["labels"]["job"] == "models-backend")
    assert backend["health"] == "up", backend.get("lastError")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{stack['backend']}/metrics", timeout=5)
    assert denied.value.code == 401


def test_every_panel_query_returns_data(stack):
    for expr in all_queries(BOARD):
        assert processes.query(stack["prometheus"], expr), expr


@pytest.mark.parametrize(
    "title",
    [
        "Model Request Throughput",
        "Model Average Latency",
        "Model Error Rate",
        "Model Token Usage Rate",
        "Hourly Request Distribution",
        "Model Availability",
    ],
)
def test_per_model_panels_cover_every_model(stack, title):
    assert set(values(stack, panel_expr(title))) == set(TRAFFIC)


def test_throughput_and_token_rate_agree_with_the_calls_sent(stack):
    throughput = values(stack, panel_expr("Model Request Throughput"))
    tokens = values(stack, panel_expr("Model Token Usage Rate"))
    hourly = values(stack, panel_expr("Hourly Request Distribution"))
    for model, t in TRAFFIC.items():
        assert throughput[model] * WINDOW_S == pytest.approx(t["calls"], rel=0.03), model
        assert tokens[model] * WINDOW_S == pytest.approx(t["calls"] * t["tokens"], rel=0.03), model
        assert hourly[model] == pytest.approx(t["calls"], rel=0.03), model


def test_average_latency_is_the_latency_sent(stack):
    latency = values(stack, panel_expr("Model Average Latency"))
    for model, t in TRAFFIC.items():
        assert latency[model] == pytest.approx(t["latency_ms"], rel=1e-6), model


def test_error_rate_and_availability_agree_with_the_errors_sent(stack):
    errors = values(stack, panel_expr("Model Error Rate"))
    availability = values(stack, panel_expr("Model Availability"))
    for model, t in TRAFFIC.items():
        expected = 100 * t["errors"] / t["calls"]
        assert errors[model] == pytest.approx(expected, abs=0.5), model
        assert availability[model] == pytest.approx(100 - expected, abs=0.5), model
    never_failed = contract.EXAMPLE_MODELS[0]
    assert errors[never_failed] == 0 and availability[never_failed] == 100


def test_family_shares_agree_with_the_calls_sent(stack):
    total = sum(t["calls"] for t in TRAFFIC.values())
    for family in FAMILIES:
        share = values(stack, panel_expr(f"{family} Models %"))[""]
        sent = sum(t["calls"] for m, t in TRAFFIC.items() if family_of(m) == family)
        assert share == pytest.approx(100 * sent / total, abs=0.5), family


def test_slo_rows_read_the_recording_rules(stack):
    prom = stack["prometheus"]
    for panel in BOARD["panels"]:
        if not panel["title"].endswith(("SLI against objective", "burn rate")):
            continue
        for target in panel["targets"]:
            result = processes.query(prom, target["expr"].replace("$model", ".*"))
            assert result, target["expr"]
            if "{{model}}" in target["legendFormat"]:
                assert {r["metric"]["model"] for r in result} == set(TRAFFIC), target["expr"]


def doctor_args(stack: dict) -> list[str]:
    """The doctor compares the rules Prometheus runs with these: the compressed copies."""
    return ["--root", str(REPO), "doctor", "--prometheus", stack["prometheus"], "--rules", str(stack["work"] / "rules")]


def test_doctor_finds_nothing_wrong_with_a_healthy_stack(stack, capsys):
    code = cli.main(doctor_args(stack))
    out = capsys.readouterr().out
    assert code == 0, out
    for metric in ("model_requests_total", "model_errors_total", "model_latency_ms_bucket", "model_tokens_used_total"):
        assert f"metric {metric} is present" in out
    assert "panel 'Claude Models %' has data" in out
    assert re.search(r"panel 'Model Error Rate' has data \(models: .*claude-3-5-sonnet-20241022", out)
    assert "Alertmanager connected" in out
    assert "Prometheus runs the rules of " in out
    assert "no problems found" in out


def test_doctor_names_a_wrong_token_as_a_bearer_token_mismatch(stack, capsys):
    """Last in the module: it breaks the scrape for good."""
    stack["token_file"].write_text("not-the-token\n")  # Prometheus re-reads credentials_file every scrape

    def backend_down() -> bool:
        targets = processes.get_json(f"{stack['prometheus']}/api/v1/targets")["data"]["activeTargets"]
        return any(t["labels"]["job"] == "models-backend" and t["health"] == "down" for t in targets)

    processes.wait_until("the backend target to go down", backend_down, 20)
    code = cli.main(doctor_args(stack))
    out = capsys.readouterr().out
    assert code == cli.EXIT_DOCTOR
    assert "answers 401 Unauthorized: bearer-token mismatch" in out
    assert TOKEN not in out and "not-the-token" not in out
