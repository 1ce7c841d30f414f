"""The metrics backend: its metrics, cap, validation, token check, simulator and faults, and real multi-worker runs."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from backend import __main__ as backend_main
from backend import auth
from backend.app import BackendApp, build
from backend.auth import BearerAuth, ConfigError
from backend.calls import Call, InvalidCalls, normalise_model, parse_calls
from backend.cap import OTHER, ModelCap
from backend.config import Settings
from backend.faults import FaultBoard, FaultKind
from backend.metrics import MODELS_FOLDED_TOTAL, ModelMetrics
from backend.runner import SimulatorRunner, try_to_lead
from backend.simulator import FAMILIES, ModelProfile, Simulator
from modelmon import contract

REPO = Path(__file__).resolve().parent.parent
TOKEN = "tok-3f9c2a7e5b1d4c8a"
API_TOKEN = "api-7c1e9b2d4f6a8e0c"
API = {"Authorization": f"Bearer {API_TOKEN}"}
GUIDE_METRICS = {
    contract.REQUESTS_TOTAL: "counter",
    contract.ERRORS_TOTAL: "counter",
    contract.LATENCY_MS: "histogram",
    contract.TOKENS_USED_TOTAL: "counter",
}


# --- helpers -------------------------------------------------------------------------


def new_metrics(cap: int = 50) -> tuple[CollectorRegistry, ModelMetrics]:
    registry = CollectorRegistry()
    return registry, ModelMetrics(registry, ModelCap(cap))


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def new_app(
    *, metrics_token: str | None = None, api_token: str | None = None, cap: int = 50, faults: FaultBoard | None = None
) -> tuple[BackendApp, CollectorRegistry]:
    registry, metrics = new_metrics(cap)
    models = contract.EXAMPLE_MODELS if faults is not None else ()
    app = BackendApp(
        metrics, registry, BearerAuth(metrics_token, "metrics"), BearerAuth(api_token, "api"), faults, models
    )
    return app, registry


def call_app(
    app: BackendApp,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    environ_extra: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through the WSGI interface, as a server would make it (`environ_extra` last)."""
    environ: dict = {}
    setup_testing_defaults(environ)
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        CONTENT_LENGTH=str(len(raw)) if body is not None else "",
        **{"wsgi.input": io.BytesIO(raw)},
    )
    for name, header in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = header
    environ.update(environ_extra or {})
    answer: dict = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        answer.update(status=int(status[:3]), headers=dict(response_headers))

    payload = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], payload


def exposition_lines(registry: CollectorRegistry) -> list[str]:
    return generate_latest(registry).decode().splitlines()


def samples(lines: list[str]) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample line of a text exposition."""
    parsed = []
    for line in lines:
        if line.startswith("#") or not line:
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        parsed.append((match.group(1), labels, float(match.group(3))))
    return parsed


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def simulator(seed: int = 7, clock: FakeClock | None = None, cap: int = 50):
    registry, metrics = new_metrics(cap)
    board = FaultBoard(clock=clock or FakeClock())
    return Simulator(metrics, board, seed=seed), board, registry


def of(calls: list[Call], model: str) -> list[Call]:
    return [c for c in calls if c.model == model]


# --- the metric contract ---------------------------------------------------------------


def test_the_backend_exposes_exactly_the_guides_four_metrics_labelled_by_model_only():
    registry, metrics = new_metrics()
    metrics.record(Call("gpt-4o-mini", 420.0, tokens=12))
    lines = exposition_lines(registry)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", "\n".join(lines), re.MULTILINE))
    assert types == {**GUIDE_METRICS, MODELS_FOLDED_TOTAL: "counter"}
    names = {name for name, _, _ in samples(lines)}
    assert names == {
        contract.REQUESTS_TOTAL,
        contract.ERRORS_TOTAL,
        contract.LATENCY_MS_BUCKET,
        contract.LATENCY_MS_COUNT,
        contract.LATENCY_MS_SUM,
        contract.TOKENS_USED_TOTAL,
        MODELS_FOLDED_TOTAL,
    }
    for name, labels, _ in samples(lines):
        if name == MODELS_FOLDED_TOTAL:
            assert labels == {}
        else:
            expected = {contract.MODEL_LABEL, "le"} if name == contract.LATENCY_MS_BUCKET else {contract.MODEL_LABEL}
            assert set(labels) == expected, name


def test_latency_buckets_are_the_contracts_bounds_in_milliseconds():
    registry, metrics = new_metrics()
    metrics.record(Call("gpt-4o-mini", 30.0))
    bounds = [labels["le"] for name, labels, _ in samples(exposition_lines(registry)) if name.endswith("_bucket")]
    assert bounds == [contract.le_label(b) for b in contract.LATENCY_BUCKETS_MS] + ["+Inf"]
    assert bounds[0] == "25.0" and bounds[-2] == "300000.0"
    # 30 is read as milliseconds: above the 25 ms bound, inside the 50 ms one.
    assert value(registry, contract.LATENCY_MS_BUCKET, model="gpt-4o-mini", le="25.0") == 0
    assert value(registry, contract.LATENCY_MS_BUCKET, model="gpt-4o-mini", le="50.0") == 1


def test_every_series_of_a_new_model_exists_at_zero_before_its_first_call():
    registry, metrics = new_metrics()
    assert metrics.see("gemini-1.5-pro") == "gemini-1.5-pro"
    model = {"model": "gemini-1.5-pro"}
    for name in (contract.REQUESTS_TOTAL, contract.ERRORS_TOTAL, contract.TOKENS_USED_TOTAL):
        assert value(registry, name, **model) == 0, name
    assert value(registry, contract.LATENCY_MS_COUNT, **model) == 0
    assert value(registry, contract.LATENCY_MS_SUM, **model) == 0
    for bound in [*map(contract.le_label, contract.LATENCY_BUCKETS_MS), "+Inf"]:
        assert value(registry, contract.LATENCY_MS_BUCKET, le=bound, **model) == 0, bound


def test_a_model_that_never_failed_still_has_its_error_series_at_zero():
    registry, metrics = new_metrics()
    metrics.record(Call("llama3.2", 80.0, tokens=5))
    assert value(registry, contract.ERRORS_TOTAL, model="llama3.2") == 0
    assert value(registry, contract.REQUESTS_TOTAL, model="llama3.2") == 1


def test_a_recorded_call_counts_its_request_error_latency_and_tokens():
    registry, metrics = new_metrics()
    metrics.record(Call("openai/gpt-4.1", 1200.0, tokens=300))
    metrics.record(Call("openai/gpt-4.1", 90.0, tokens=0, error=True))
    model = {"model": "openai/gpt-4.1"}
    assert value(registry, contract.REQUESTS_TOTAL, **model) == 2
    assert value(registry, contract.ERRORS_TOTAL, **model) == 1
    assert value(registry, contract.TOKENS_USED_TOTAL, **model) == 300
    assert value(registry, contract.LATENCY_MS_COUNT, **model) == 2
    assert value(registry, contract.LATENCY_MS_SUM, **model) == 1290
    assert value(registry, contract.LATENCY_MS_BUCKET, le="100.0", **model) == 1
    assert value(registry, contract.LATENCY_MS_BUCKET, le="2500.0", **model) == 2


# --- the cap on model names ------------------------------------------------------------


def test_models_past_the_cap_fold_into_other_and_each_folded_call_is_counted():
    registry, metrics = new_metrics(cap=2)
    for model in ("gpt-4o-mini", "llama3.2", "gpt-4o-mni", "lama3.2", "gpt-4o-mni", "gpt-4o-mini"):
        metrics.record(Call(model, 100.0, tokens=1))
    assert value(registry, contract.REQUESTS_TOTAL, model="gpt-4o-mini") == 2
    assert value(registry, contract.REQUESTS_TOTAL, model="llama3.2") == 1
    assert value(registry, contract.REQUESTS_TOTAL, model=OTHER) == 3
    assert value(registry, contract.ERRORS_TOTAL, model=OTHER) == 0
    assert value(registry, contract.REQUESTS_TOTAL, model="gpt-4o-mni") is None
    assert value(registry, MODELS_FOLDED_TOTAL) == 3
    models = {labels.get("model") for _, labels, _ in samples(exposition_lines(registry))} - {None}
    assert models == {"gpt-4o-mini", "llama3.2", OTHER}


def test_a_caller_sending_other_shares_the_folded_series_without_taking_a_place_or_counting_as_folded():
    registry, metrics = new_metrics(cap=1)
    assert metrics.record(Call(OTHER, 10.0)) == OTHER
    assert metrics.record(Call("mistral-large-latest", 10.0)) == "mistral-large-latest"
    assert value(registry, MODELS_FOLDED_TOTAL) == 0


def test_workers_share_one_cap_through_its_file(tmp_path: Path):
    # Two ModelCap objects on one file behave as two worker processes: flock locks
    # open files, not processes, so they exclude each other just the same.
    shared = tmp_path / "models.txt"
    first, second = ModelCap(2, shared), ModelCap(2, shared)
    assert first.admit("gpt-4o-mini") == "gpt-4o-mini"
    assert second.admit("llama3.2") == "llama3.2"
    assert second.admit("gemini-1.5-pro") == OTHER
    assert first.admit("gemini-1.5-pro") == OTHER
    assert first.admit("llama3.2") == "llama3.2"  # admitted by the other worker
    assert shared.read_text().splitlines() == ["gpt-4o-mini", "llama3.2"]


# --- input validation ------------------------------------------------------------------


def test_model_names_are_trimmed_and_names_that_could_leak_series_are_refused():
    assert normalise_model("  meta-llama/Llama-3.1-70B-Instruct\n") == "meta-llama/Llama-3.1-70B-Instruct"
    assert normalise_model("claude-3-5-sonnet@20240620") == "claude-3-5-sonnet@20240620"
    assert normalise_model("x" * 128) == "x" * 128
    for bad, reason in (
        ("x" * 129, "at most 128"),
        ("", "empty"),
        ("gpt 4o", "letters, digits"),
        ('gpt"}', "letters, digits"),
        ("-gpt", "start with"),
        (42, "string"),
    ):
        with pytest.raises(ValueError, match=reason):
            normalise_model(bad)


def test_every_problem_of_a_call_is_reported_with_its_field():
    with pytest.raises(InvalidCalls) as caught:
        parse_calls({"model": "gpt-4o-mini", "latency_ms": True, "tokens": 1.5, "error": "no", "latency": 3})
    assert caught.value.problems == [
        "latency: unknown field; the fields are model, latency_ms, tokens, error",
        "latency_ms: must be a number from 0 to 3600000 (got True)",
        "tokens: must be a whole number from 0 to 10000000 (got 1.5)",
        "error: must be true or false (got 'no')",
    ]
    assert parse_calls({"model": "llama3.2", "latency_ms": 12}) == [Call("llama3.2", 12.0, 0, False)]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([{"model": "gpt-4o-mini", "latency_ms": 50}, {"model": "llama3.2", "latency_ms": -1}], 400, "[1].latency_ms"),
        ({"model": "gpt-4o-mini", "latency_ms": float("nan")}, 400, "latency_ms: must be a number"),
        ({"latency_ms": 50}, 400, "model: is required"),
        ([], 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"[" * 100_000, 400, "not valid JSON"),
        (b" " * ((1 << 20) + 1), 413, "at most 1048576 bytes"),
        (None, 411, "Content-Length"),
    ],
)
def test_a_bad_request_is_refused_with_a_clear_message_and_nothing_is_recorded(body, status, message):
    app, registry = new_app()
    before = exposition_lines(registry)
    code, headers, payload = call_app(app, "POST", "/v1/calls", body)
    assert code == status
    assert headers["Content-Type"] == "application/json"
    assert message in json.dumps(json.loads(payload))
    assert exposition_lines(registry) == before


def test_a_valid_batch_is_recorded_whole_and_says_how_many_calls_were_folded():
    app, registry = new_app(cap=1)
    body = [{"model": "gpt-4o-mini", "latency_ms": 50, "tokens": 7}, {"model": "typo", "latency_ms": 9, "error": True}]
    code, _, payload = call_app(app, "POST", "/v1/calls", body)
    assert (code, json.loads(payload)) == (200, {"recorded": 2, "folded": 1})
    assert value(registry, contract.TOKENS_USED_TOTAL, model="gpt-4o-mini") == 7
    assert value(registry, contract.ERRORS_TOTAL, model=OTHER) == 1


def test_unknown_paths_and_wrong_methods_are_answered_404_and_405():
    app, _ = new_app()
    assert call_app(app, "GET", "/nope")[0] == 404
    code, headers, _ = call_app(app, "GET", "/v1/calls")
    assert (code, headers["Allow"]) == (405, "POST")
    assert call_app(app, "POST", "/metrics", {})[0] == 405


# --- the token check -------------------------------------------------------------------


def test_metrics_refuse_a_missing_or_wrong_token_and_serve_the_right_one_without_ever_showing_it(caplog):
    caplog.set_level(logging.DEBUG)
    app, _ = new_app(metrics_token=TOKEN)
    shown: list[str] = []
    for header in (None, f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", "Bearer  "):
        code, headers, payload = call_app(app, "GET", "/metrics", headers={"Authorization": header} if header else {})
        assert code == 401, header
        assert headers["WWW-Authenticate"].startswith('Bearer realm="metrics"')
        assert contract.REQUESTS_TOTAL not in payload.decode()
        shown += [payload.decode(), json.dumps(headers)]
    wrong = call_app(app, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})[1]["WWW-Authenticate"]
    assert 'error="invalid_token"' in wrong
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        code, headers, payload = call_app(app, "GET", "/metrics", headers={"Authorization": header})
        assert code == 200
        assert headers["Content-Type"].startswith("text/plain")
        assert f"# TYPE {contract.REQUESTS_TOTAL} counter" in payload.decode()
        shown.append(json.dumps(headers))
    assert caplog.records, "refusals are logged"
    assert not [text for text in [*shown, caplog.text] if TOKEN[:8] in text]


def test_the_token_is_compared_in_constant_time(monkeypatch):
    compared = []

    def spy(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    app, _ = new_app(metrics_token=TOKEN)
    assert call_app(app, "GET", "/metrics", headers={"Authorization": "Bearer guess"})[0] == 401
    assert compared == [(b"guess", TOKEN.encode())]


def test_healthz_stays_open_when_metrics_need_a_token():
    app, _ = new_app(metrics_token=TOKEN, api_token="api-secret")
    code, _, payload = call_app(app, "GET", "/healthz")
    assert (code, payload) == (200, b"ok\n")


def test_metrics_are_open_when_no_token_is_configured():
    app, _ = new_app()
    assert call_app(app, "GET", "/metrics")[0] == 200


def test_recording_and_faults_need_the_api_token_when_one_is_configured():
    app, registry = new_app(api_token="api-secret", faults=FaultBoard())
    call = {"model": "llama3.2", "latency_ms": 5}
    assert call_app(app, "POST", "/v1/calls", call)[0] == 401
    assert call_app(app, "GET", "/v1/faults")[0] == 401
    assert value(registry, contract.REQUESTS_TOTAL, model="llama3.2") is None
    assert call_app(app, "POST", "/v1/calls", call, {"Authorization": "Bearer api-secret"})[0] == 200


def test_the_token_is_read_from_a_file_and_never_shown_by_the_settings(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    settings = Settings.from_env({"MODELMON_METRICS_TOKEN_FILE": str(token_file)})
    assert settings.metrics_token == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN not in repr(BearerAuth(TOKEN, "metrics"))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MODELMON_METRICS_TOKEN": TOKEN, "MODELMON_METRICS_TOKEN_FILE": "/x"}, "not both"),
        ({"MODELMON_METRICS_TOKEN_FILE": "/nonexistent/token"}, "cannot read /nonexistent/token"),
        ({"MODELMON_METRICS_TOKEN": "  \n"}, "is empty"),
        ({"MODELMON_METRICS_TOKEN": f"{TOKEN} more"}, "one word"),
        ({"MODELMON_MODEL_CAP": "0"}, "between 1 and 10000"),
        ({"MODELMON_SIMULATE": "maybe"}, "1 or 0"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/dir"}, "not a directory"),
    ],
)
def test_a_bad_setting_stops_the_backend_with_a_message_that_holds_no_secret(environ, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings.from_env(environ)
    assert TOKEN not in str(caught.value)


def test_python_m_backend_exits_2_on_a_bad_setting(monkeypatch, capsys):
    monkeypatch.setenv("MODELMON_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("MODELMON_METRICS_TOKEN_FILE", "/x")
    assert backend_main.main(["--port", "0"]) == 2
    assert "not both" in capsys.readouterr().err


# --- the simulator ---------------------------------------------------------------------


def test_the_same_seed_simulates_the_same_traffic_and_another_seed_other_traffic():
    first, _, first_registry = simulator(seed=7)
    second, _, second_registry = simulator(seed=7)
    other, _, _ = simulator(seed=8)
    calls = first.tick(30)
    assert calls == second.tick(30)
    assert exposition_lines(first_registry) == exposition_lines(second_registry)
    assert calls != other.tick(30)


def test_simulated_traffic_covers_the_five_families_with_realistic_rates_latencies_tokens_and_errors():
    sim, _, registry = simulator(seed=11)
    assert sim.models == contract.EXAMPLE_MODELS
    assert {family for family in FAMILIES if any(family in m.lower() for m in sim.models)} == set(FAMILIES)
    seconds = 600
    calls = sim.tick(seconds)
    for profile in sim.profiles:
        mine = of(calls, profile.model)
        assert 0.8 < len(mine) / (profile.rate_per_s * seconds) < 1.2, profile.model
        assert value(registry, contract.REQUESTS_TOTAL, model=profile.model) == len(mine)
        assert value(registry, contract.TOKENS_USED_TOTAL, model=profile.model) == sum(c.tokens for c in mine)
    latencies = sorted(c.latency_ms for c in calls)
    assert latencies[0] < 100 < 10_000 < latencies[-1] < 120_000  # tens of ms to tens of seconds
    # Healthy traffic keeps the shipped SLOs: errors under the 1% budget, 95% of calls under 5 s.
    assert sum(c.error for c in calls) / len(calls) < 0.01
    assert sum(c.latency_ms > 5000 for c in calls) / len(calls) < 0.05
    assert all(c.tokens > 0 for c in calls if not c.error)


def test_every_simulated_model_is_on_the_metrics_at_zero_before_its_first_call():
    _, _, registry = simulator()
    for model in contract.EXAMPLE_MODELS:
        assert value(registry, contract.ERRORS_TOTAL, model=model) == 0


def test_an_outage_fails_every_call_of_that_model_and_no_other():
    sim, board, registry = simulator(seed=3)
    board.set(FaultKind.OUTAGE, "gpt-4o-mini")
    calls = sim.tick(60)
    down = of(calls, "gpt-4o-mini")
    assert down and all(c.error and c.tokens == 0 for c in down)
    assert value(registry, contract.ERRORS_TOTAL, model="gpt-4o-mini") == len(down)
    others = [c for c in calls if c.model != "gpt-4o-mini"]
    assert sum(c.error for c in others) / len(others) < 0.02


def test_a_latency_spike_puts_every_call_of_that_model_above_ten_seconds():
    sim, board, registry = simulator(seed=5)
    board.set(FaultKind.LATENCY_SPIKE, "claude-3-5-sonnet-20241022", duration_s=600)
    slow = of(sim.tick(60), "claude-3-5-sonnet-20241022")
    model = {"model": "claude-3-5-sonnet-20241022"}
    assert slow and all(c.latency_ms >= 10_000 for c in slow)
    assert value(registry, contract.LATENCY_MS_BUCKET, le="5000.0", **model) == 0
    assert value(registry, contract.LATENCY_MS_COUNT, **model) == len(slow)


def test_an_error_burst_fails_about_a_fifth_of_the_calls_of_that_model():
    sim, board, _ = simulator(seed=9)
    board.set(FaultKind.ERROR_BURST, "google/gemini-2.0-flash")
    burst = of(sim.tick(300), "google/gemini-2.0-flash")
    assert 0.14 < sum(c.error for c in burst) / len(burst) < 0.26


def test_a_fault_with_a_duration_clears_itself_and_the_traffic_recovers():
    clock = FakeClock()
    sim, board, _ = simulator(seed=4, clock=clock)
    board.set(FaultKind.OUTAGE, "llama3.2", duration_s=60)
    assert all(c.error for c in of(sim.tick(60), "llama3.2"))
    clock.now += 60
    assert board.active() == {}
    recovered = of(sim.tick(60), "llama3.2")
    assert recovered and sum(c.error for c in recovered) <= 2


def test_faults_are_switched_on_and_off_over_http():
    clock = FakeClock()
    app, _ = new_app(api_token=API_TOKEN, faults=FaultBoard(clock=clock))
    fault = {"kind": "latency_spike", "model": "openai/gpt-4.1", "duration_s": 90}
    code, _, payload = call_app(app, "POST", "/v1/faults", fault, API)
    expected = {"kind": "latency_spike", "model": "openai/gpt-4.1", "remaining_s": 90.0}
    assert (code, json.loads(payload)) == (201, {"fault": expected})
    clock.now += 30
    listed = json.loads(call_app(app, "GET", "/v1/faults", headers=API)[2])
    assert listed == {"faults": [{"kind": "latency_spike", "model": "openai/gpt-4.1", "remaining_s": 60.0}]}
    assert call_app(app, "DELETE", "/v1/faults/openai/gpt-4.1", headers=API)[0] == 200
    assert call_app(app, "DELETE", "/v1/faults/openai/gpt-4.1", headers=API)[0] == 404
    assert json.loads(call_app(app, "GET", "/v1/faults", headers=API)[2]) == {"faults": []}


def test_the_fault_api_is_off_without_an_api_token_where_recording_stays_open():
    """Anyone who reaches the backend could otherwise take a model down."""
    board = FaultBoard()
    app, _ = new_app(faults=board)
    for method, path, body in [
        ("POST", "/v1/faults", {"kind": "outage", "model": "gpt-4o-mini"}),
        ("GET", "/v1/faults", None),
        ("DELETE", "/v1/faults", None),
        ("DELETE", "/v1/faults/gpt-4o-mini", None),
    ]:
        code, _, payload = call_app(app, method, path, body, {"Authorization": "Bearer anything"})
        assert code == 403, (method, path)
        assert "MODELMON_API_TOKEN" in json.loads(payload)["error"]
    assert board.active() == {}
    assert call_app(app, "PUT", "/v1/faults")[0] == 405
    assert call_app(app, "POST", "/v1/calls", {"model": "llama3.2", "latency_ms": 5})[0] == 200


def test_a_simulating_backend_without_an_api_token_says_at_start_that_the_fault_api_is_off(caplog):
    with caplog.at_level(logging.WARNING, logger="modelmon.backend"):
        app = build(Settings(metrics_token=TOKEN, simulate=True, seed=1))
    app.close()
    assert any("fault API is off" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelmon.backend"):
        app = build(Settings(metrics_token=TOKEN, api_token=API_TOKEN, simulate=True, seed=1))
    app.close()
    assert not caplog.records


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "meltdown", "model": "llama3.2"}, "kind: must be one of outage, error_burst, latency_spike"),
        ({"kind": "outage", "model": "gpt-5"}, "model: must be one of the simulated models"),
        ({"kind": "outage", "model": "llama3.2", "duration_s": 0}, "duration_s: must be a number of seconds"),
        ({"kind": "outage", "model": "llama3.2", "for": 3}, "for: unknown field"),
        ({"kind": ["outage"], "model": {"name": "llama3.2"}}, "kind: must be one of"),
    ],
)
def test_a_bad_fault_is_refused_with_a_clear_message(fault, message):
    app, _ = new_app(api_token=API_TOKEN, faults=FaultBoard())
    code, _, payload = call_app(app, "POST", "/v1/faults", fault, API)
    assert code == 400 and message in json.loads(payload)["error"]
    assert json.loads(call_app(app, "GET", "/v1/faults", headers=API)[2]) == {"faults": []}


def test_fault_endpoints_say_they_need_the_simulator_when_it_is_off():
    app, _ = new_app(api_token=API_TOKEN)
    code, _, payload = call_app(app, "GET", "/v1/faults", headers=API)
    assert code == 404 and "MODELMON_SIMULATE=1" in json.loads(payload)["error"]


def test_a_fault_set_through_one_worker_is_seen_by_the_worker_that_simulates(tmp_path: Path):
    shared = tmp_path / "faults.json"
    FaultBoard(shared).set(FaultKind.OUTAGE, "mistral-large-latest", duration_s=300)
    simulating = FaultBoard(shared)
    assert simulating.active()["mistral-large-latest"].kind is FaultKind.OUTAGE
    assert [f.model for f in FaultBoard(shared).clear()] == ["mistral-large-latest"]
    assert simulating.active() == {}


def test_only_one_process_leads_the_simulator_and_another_takes_over_when_it_stops(tmp_path: Path):
    lock = tmp_path / "simulator.lock"
    leader = try_to_lead(lock)
    assert leader is not None
    assert try_to_lead(lock) is None
    leader.close()
    successor = try_to_lead(lock)
    assert successor is not None
    successor.close()


def test_the_runner_simulates_traffic_in_real_time_until_stopped():
    registry, metrics = new_metrics()
    busy = ModelProfile("gpt-4o-mini", rate_per_s=500.0, median_ms=300.0, mean_tokens=50.0, error_ratio=0.0)
    runner = SimulatorRunner(Simulator(metrics, FaultBoard(), [busy], seed=1), interval_s=0.02)
    runner.start()
    deadline = time.monotonic() + 5
    while not value(registry, contract.REQUESTS_TOTAL, model="gpt-4o-mini") and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.stop()
    stopped_at = value(registry, contract.REQUESTS_TOTAL, model="gpt-4o-mini")
    assert stopped_at > 0
    time.sleep(0.1)
    assert value(registry, contract.REQUESTS_TOTAL, model="gpt-4o-mini") == stopped_at


# --- the image -------------------------------------------------------------------------


def test_the_image_pins_the_backend_extra_at_the_versions_of_the_constraints():
    def pins(path: str) -> dict[str, str]:
        lines = (REPO / path).read_text().splitlines()
        named = (line.split("==") for line in lines if line and not line.startswith("#"))
        return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in named}

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    backend = {re.match(r"[\w.-]+", requirement)[0].replace("_", "-").lower() for requirement in extras["backend"]}
    image = pins("backend/requirements.txt")
    assert set(image) == backend
    assert image == {name: pins("constraints.txt")[name] for name in backend}


def test_the_files_the_dockerfile_copies_are_enough_to_start_the_app(tmp_path: Path):
    dockerfile = (REPO / "backend/Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
    image = tmp_path / "app"
    for source, target in re.findall(r"^COPY (\S+) /app/(\S+)$", dockerfile, re.MULTILINE):
        if source.endswith("/"):
            shutil.copytree(REPO / source, image / target, dirs_exist_ok=True)
        else:
            (image / target).parent.mkdir(parents=True, exist_ok=True)
            (image / target).write_bytes((REPO / source).read_bytes())
    # -S leaves out site-packages' .pth files, and with them the editable install of
    # this repository, so `modelmon` can only come from what the image holds.
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    check = "import backend.app, backend.gunicorn_conf; from modelmon import contract; print(contract.__file__)"
    result = subprocess.run(
        [sys.executable, "-S", "-c", check],
        cwd=image,
        env={"PYTHONPATH": f"{image}:{site_packages}", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(image / "modelmon/contract.py")


# --- real servers over HTTP ------------------------------------------------------------


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMON_", "PROMETHEUS_"))}
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=REPO, env={**environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """Ends the whole process group (gunicorn's workers too), whatever state it is in."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_for(pattern: str, log: Path, process: subprocess.Popen, timeout_s: float = 15) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} within {timeout_s}s:\n{log.read_text()}")


def http(method: str, url: str, body: object = None, token: str | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def totals(exposition: str, name: str) -> dict[str, float]:
    return {labels["model"]: v for n, labels, v in samples(exposition.splitlines()) if n == name}


def workers_of(master: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.add(int(stat.parent.name))
    return children


def counting_pids(metrics_dir: Path) -> set[int]:
    """The processes whose metric files hold at least one recorded request."""
    pids = set()
    for db in metrics_dir.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(db)])
        if any(s.value for m in merged if m.name == "model_requests" for s in m.samples):
            pids.add(int(db.stem.removeprefix("counter_")))
    return pids


def test_several_gunicorn_workers_report_exact_totals_even_across_a_worker_restart(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous run's leftovers are wiped
    log = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.app:from_env()"]
    env = {
        "PORT": "0",
        "MODELMON_HOST": "127.0.0.1",
        "MODELMON_WORKERS": "3",
        "MODELMON_MODEL_CAP": "4",
        "MODELMON_METRICS_TOKEN_FILE": str(token_file),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    process = start(command, env, log)
    try:
        base = wait_for(r"Listening at: (http://127\.0\.0\.1:\d+)", log, process).group(1)
        deadline = time.monotonic() + 15
        while len(workers_of(process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers_of(process.pid)) == 3
        models = contract.EXAMPLE_MODELS[:4]
        typos = ["gpt-4o-mni", "lama3.2"]  # past the cap of 4: folded into "other"
        calls = [
            {"model": (models + tuple(typos))[i % 6], "latency_ms": 40 + i, "tokens": 3, "error": i % 5 == 0}
            for i in range(240)
        ]

        def post(call: dict) -> int:
            return http("POST", f"{base}/v1/calls", call)[0]

        # The four real models first, one by one: the cap admits names in the order
        # they arrive, and concurrent calls arrive in any order.
        assert [post(call) for call in calls[:4]] == [200] * 4
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(post, calls[4:120])) == {200}
            # A worker that has served calls: its counts must outlive it.
            victim = min(counting_pids(metrics_dir) & workers_of(process.pid))
            os.kill(victim, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                workers = workers_of(process.pid)
                if victim not in workers and len(workers) == 3:
                    break
                time.sleep(0.05)
            assert victim not in workers and len(workers) == 3
            assert set(pool.map(post, calls[120:])) == {200}

        assert http("GET", f"{base}/metrics")[0] == 401
        assert http("GET", f"{base}/healthz")[0] == 200
        code, exposition = http("GET", f"{base}/metrics", token=TOKEN)
        assert code == 200
        requests = totals(exposition, contract.REQUESTS_TOTAL)
        assert sum(requests.values()) == len(calls)
        assert requests == {**{m: 40 for m in models}, OTHER: 80}
        assert sum(totals(exposition, contract.ERRORS_TOTAL).values()) == sum(c["error"] for c in calls)
        assert sum(totals(exposition, contract.TOKENS_USED_TOTAL).values()) == 3 * len(calls)
        assert sum(totals(exposition, contract.LATENCY_MS_COUNT).values()) == len(calls)
        assert sum(totals(exposition, contract.LATENCY_MS_SUM).values()) == sum(c["latency_ms"] for c in calls)
        folded = [v for n, _, v in samples(exposition.splitlines()) if n == MODELS_FOLDED_TOTAL]
        assert folded == [80]

        # The calls really were spread over workers, the stopped one among them.
        assert victim in counting_pids(metrics_dir)
        assert len(counting_pids(metrics_dir)) >= 2
        assert not (metrics_dir / "counter_999999.db").exists()
    finally:
        stop(process)
    assert TOKEN not in log.read_text()


def test_python_m_backend_serves_simulated_traffic_behind_a_token_and_takes_faults_at_run_time(tmp_path: Path):
    log = tmp_path / "backend.log"
    env = {
        "MODELMON_SIMULATE": "1",
        "MODELMON_SIMULATE_SEED": "1",
        "MODELMON_METRICS_TOKEN": TOKEN,
        "MODELMON_API_TOKEN": API_TOKEN,
    }
    process = start([sys.executable, "-m", "backend", "--port", "0"], env, log)
    try:
        base = wait_for(r"serving on (http://127\.0\.0\.1:\d+)", log, process).group(1)
        assert http("GET", f"{base}/metrics", token="wrong")[0] == 401
        outage = {"kind": "outage", "model": "gpt-4o-mini"}
        assert http("POST", f"{base}/v1/faults", outage)[0] == 401
        assert http("POST", f"{base}/v1/faults", outage, token=API_TOKEN)[0] == 201
        # Healthy, gpt-4o-mini fails 1 call in 500 at 6 calls a second: 10 errors
        # within seconds can only come from the outage.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            exposition = http("GET", f"{base}/metrics", token=TOKEN)[1]
            if totals(exposition, contract.ERRORS_TOTAL).get("gpt-4o-mini", 0) >= 10:
                break
            time.sleep(0.2)
        assert set(totals(exposition, contract.REQUESTS_TOTAL)) == set(contract.EXAMPLE_MODELS)
        requests, errors = totals(exposition, contract.REQUESTS_TOTAL), totals(exposition, contract.ERRORS_TOTAL)
        assert errors["gpt-4o-mini"] >= 10
        # Calls from a tick that began before the fault may have succeeded; nearly all others failed.
        assert errors["gpt-4o-mini"] / requests["gpt-4o-mini"] > 0.6
        assert http("DELETE", f"{base}/v1/faults/gpt-4o-mini", token=API_TOKEN)[0] == 200
    finally:
        stop(process)
    assert TOKEN not in log.read_text() and API_TOKEN not in log.read_text()


# --- Hostile requests: no 500, no forged log lines, no log flood ------------------------------


@pytest.mark.parametrize("length", ["²", "1e3", "-1", " 12", "\uff11\uff12"])
def test_a_content_length_that_is_not_ascii_digits_is_refused_not_a_server_error(length):
    """'²'.isdigit() is True in Python and int('²') raises: that was a 500."""
    app, _ = new_app()
    code, _, payload = call_app(app, "POST", "/v1/calls", b"[]", environ_extra={"CONTENT_LENGTH": length})
    assert code == 411, payload
    assert "Content-Length" in json.loads(payload)["error"]


def test_a_refused_path_is_logged_escaped_on_one_line(caplog):
    """PATH_INFO arrives decoded: %0a in a URL is a line break that would forge a log line."""
    app, _ = new_app(api_token="s3cret")
    with caplog.at_level(logging.INFO, logger="modelmon.backend"):
        code, _, _ = call_app(app, "DELETE", "/v1/faults/x\n2026-12-01 INFO modelmon.backend: forged\x1b[2J")
    assert code == 401
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("refused DELETE /v1/faults/x\\n2026-12-01 INFO modelmon.backend: forged\\x1b[2J from ")


def test_refusals_are_logged_at_most_once_per_interval_with_a_count_of_the_rest(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    app, _ = new_app(metrics_token="s3cret")
    with caplog.at_level(logging.INFO, logger="modelmon.backend"):
        for _ in range(500):
            assert call_app(app, "GET", "/metrics", headers={"Authorization": "Bearer guess"})[0] == 401
        clock[0] += auth.REFUSAL_LOG_INTERVAL_S
        assert call_app(app, "GET", "/metrics", headers={"Authorization": "Bearer guess"})[0] == 401
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "wrong bearer token" in lines[0] and "more refusals" not in lines[0]
    assert f"(499 more refusals not logged in the last {auth.REFUSAL_LOG_INTERVAL_S:g}s)" in lines[1]
    assert all("guess" not in line and "s3cret" not in line for line in lines)


STALLED = 10  # clients that send half a request and stop: once enough to block every sync worker


@pytest.mark.parametrize("server", ["gunicorn", "python -m backend"])
def test_stalled_clients_cannot_stop_scrapes_or_calls_and_totals_stay_exact(tmp_path: Path, server: str):
    """Two such clients once blocked both gunicorn sync workers: /healthz timed out and /metrics
    answered after 25 s. Now each holds one thread until MODELMON_READ_TIMEOUT_S, then gets 408."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {"MODELMON_METRICS_TOKEN_FILE": str(token_file), "MODELMON_READ_TIMEOUT_S": "4"}
    log = tmp_path / "server.log"
    if server == "gunicorn":
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        command = [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.app:from_env()"]
        env |= {"PORT": "0", "MODELMON_HOST": "127.0.0.1", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        listening = r"Listening at: (http://127\.0\.0\.1:\d+)"
    else:
        command = [sys.executable, "-m", "backend", "--port", "0"]
        listening = r"serving on (http://127\.0\.0\.1:\d+)"
    process = start(command, env, log)
    stalled: list[socket.socket] = []
    try:
        base = wait_for(listening, log, process).group(1)
        host, port = base.removeprefix("http://").split(":")
        for _ in range(STALLED):
            client = socket.create_connection((host, int(port)), timeout=30)
            client.sendall(
                b"POST /v1/calls HTTP/1.1\r\nHost: backend\r\nContent-Type: application/json\r\n"
                b'Content-Length: 200\r\n\r\n[{"model": "gpt-4o-mini", '
            )
            stalled.append(client)
        time.sleep(0.5)  # the server has read their headers and waits for the rest

        # While they stall, everything else is answered (each request's own timeout is 10 s).
        assert http("GET", f"{base}/healthz?token=Sup3rS3cret")[0] == 200
        calls = [
            {"model": contract.EXAMPLE_MODELS[i % 3], "latency_ms": 10 + i, "error": i % 4 == 0} for i in range(60)
        ]
        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(lambda call: http("POST", f"{base}/v1/calls", call)[0], calls)) == {200}
        code, exposition = http("GET", f"{base}/metrics", token=TOKEN)
        assert code == 200
        assert totals(exposition, contract.REQUESTS_TOTAL) == {m: 20 for m in contract.EXAMPLE_MODELS[:3]}
        assert sum(totals(exposition, contract.ERRORS_TOTAL).values()) == 15

        # Each stalled client is answered once its time is up, and its half call is not recorded.
        for client in stalled:
            answer = client.recv(4096)
            assert answer.split(b"\r\n")[0].endswith(b" 408 Request Timeout"), answer[:200]
        code, exposition = http("GET", f"{base}/metrics", token=TOKEN)
        assert sum(totals(exposition, contract.REQUESTS_TOTAL).values()) == len(calls)
        # The access log has the path, never the query string that held a token.
        text = log.read_text()
        assert '"GET /healthz HTTP/1.1" 200' in text and "Sup3rS3cret" not in text
    finally:
        for client in stalled:
            client.close()
        stop(process)
