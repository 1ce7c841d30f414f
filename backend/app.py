"""The backend's HTTP API as a WSGI application, and its assembly from settings.

    GET    /healthz             liveness; always open
    GET    /metrics             the Prometheus exposition; bearer token when configured
    POST   /v1/calls            record one model call, or a list of them
    GET    /v1/faults           faults in force on the simulated traffic
    POST   /v1/faults           inject one: {"kind", "model", "duration_s"?}
    DELETE /v1/faults[/<model>] clear every fault, or the one of a model

gunicorn builds one app per worker with the factory `backend.app:from_env()`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from backend import config
from backend.auth import BearerAuth
from backend.calls import InvalidCalls, parse_calls
from backend.cap import ModelCap
from backend.faults import FaultBoard, InvalidFault, parse_fault
from backend.metrics import ModelMetrics
from backend.runner import SimulatorRunner
from backend.simulator import Simulator

log = logging.getLogger("modelmon.backend")

# 1,000 calls of ~150 bytes with room to spare; a larger body is a mistake or an attack.
MAX_BODY_BYTES = 1 << 20
FAULTS_PATH = "/v1/faults"
FAULT_API_NEEDS_TOKEN = (
    "the fault API is off without an API token: set MODELMON_API_TOKEN or MODELMON_API_TOKEN_FILE"
    " and send it as 'Authorization: Bearer <token>'"
)

StartResponse = Callable[[str, list[tuple[str, str]]], object]


@dataclass
class Response:
    status: str
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: str, payload: object, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = (json.dumps(payload) + "\n").encode("utf-8")
    return Response(status, body, [("Content-Type", "application/json"), *headers])


class HttpError(Exception):
    def __init__(self, status: str, message: str, headers: Iterable[tuple[str, str]] = (), **extra: object):
        super().__init__(message)
        self.response = json_response(status, {"error": message, **extra}, headers)


def _method_not_allowed(allowed: str) -> HttpError:
    return HttpError("405 Method Not Allowed", f"use {allowed}", [("Allow", allowed)])


def _read_json(environ: dict, timeout_s: float) -> object:
    raw_length = environ.get("CONTENT_LENGTH") or ""
    # ASCII digits only: str.isdigit() also takes '²', which int() then refuses.
    if not (raw_length.isascii() and raw_length.isdigit()):
        raise HttpError("411 Length Required", "a JSON body with a Content-Length header is required")
    length = int(raw_length)
    if length > MAX_BODY_BYTES:
        raise HttpError("413 Content Too Large", f"the body must be at most {MAX_BODY_BYTES} bytes (got {length})")
    # A client that stalls mid-body gives up its thread after timeout_s. gunicorn hands the
    # socket over; python -m backend sets the same timeout on its connections.
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(timeout_s)
    try:
        raw = environ["wsgi.input"].read(length)
    except (TimeoutError, OSError):
        raise HttpError("408 Request Timeout", f"the body did not arrive within {timeout_s:g}s") from None
    finally:
        if sock is not None:
            sock.settimeout(None)
    if len(raw) < length:
        raise HttpError("400 Bad Request", f"the body ended after {len(raw)} of {length} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise HttpError("400 Bad Request", f"the body is not valid JSON: {exc}") from None


class BackendApp:
    """Routes requests; everything it records goes through `metrics`."""

    def __init__(
        self,
        metrics: ModelMetrics,
        exposition: CollectorRegistry,
        metrics_auth: BearerAuth,
        api_auth: BearerAuth,
        faults: FaultBoard | None = None,
        simulated_models: Iterable[str] = (),
        runner: SimulatorRunner | None = None,
        read_timeout_s: float = config.DEFAULT_READ_TIMEOUT_S,
    ):
        self.metrics = metrics
        self._exposition = make_wsgi_app(exposition)
        self._metrics_auth = metrics_auth
        self._api_auth = api_auth
        self.faults = faults
        self._simulated_models = frozenset(simulated_models)
        self.runner = runner
        self.read_timeout_s = read_timeout_s

    def close(self) -> None:
        """Stops the simulator thread, if any."""
        if self.runner is not None:
            self.runner.stop()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        try:
            if path == "/metrics":
                # client_python's app negotiates the format (text or OpenMetrics) and gzip.
                self._authorise(self._metrics_auth, environ, method, "GET")
                return self._exposition(environ, start_response)
            response = self._route(method, path, environ)
        except HttpError as exc:
            response = exc.response
        start_response(response.status, [*response.headers, ("Content-Length", str(len(response.body)))])
        return [response.body]

    def _authorise(self, auth: BearerAuth, environ: dict, method: str, allowed: str) -> None:
        if method not in allowed.split(", "):
            raise _method_not_allowed(allowed)
        denied = auth.check(environ)
        if denied is not None:
            raise HttpError("401 Unauthorized", denied.message, [("WWW-Authenticate", denied.challenge)])

    def _route(self, method: str, path: str, environ: dict) -> Response:
        if path == "/healthz":
            if method not in ("GET", "HEAD"):
                raise _method_not_allowed("GET, HEAD")
            return Response("200 OK", b"ok\n", [("Content-Type", "text/plain; charset=utf-8")])
        if path == "/v1/calls":
            self._authorise(self._api_auth, environ, method, "POST")
            return self._record_calls(environ)
        if path == FAULTS_PATH or path.startswith(FAULTS_PATH + "/"):
            return self._faults_route(method, path, environ)
        raise HttpError("404 Not Found", f"no such endpoint: {path}")

    def _record_calls(self, environ: dict) -> Response:
        try:
            calls = parse_calls(_read_json(environ, self.read_timeout_s))
        except InvalidCalls as exc:
            raise HttpError("400 Bad Request", "invalid call; nothing was recorded", details=exc.problems) from None
        # Every call is valid before the first is recorded: a batch lands whole or not at all.
        recorded_as = [self.metrics.record(call) for call in calls]
        folded = sum(1 for call, name in zip(calls, recorded_as, strict=True) if name != call.model)
        return json_response("200 OK", {"recorded": len(calls), "folded": folded})

    def _faults_route(self, method: str, path: str, environ: dict) -> Response:
        model = path.removeprefix(FAULTS_PATH + "/") if path != FAULTS_PATH else None
        allowed = "DELETE" if model else "GET, POST, DELETE"
        if method not in allowed.split(", "):
            raise _method_not_allowed(allowed)
        if not self._api_auth.required:
            # Unlike /v1/calls, which only adds samples, the fault API takes models down:
            # it never runs open, whoever can reach the backend.
            raise HttpError("403 Forbidden", FAULT_API_NEEDS_TOKEN)
        self._authorise(self._api_auth, environ, method, allowed)
        if self.faults is None:
            raise HttpError("404 Not Found", "fault injection needs the simulator: start with MODELMON_SIMULATE=1")
        now = self.faults.now()
        if method == "GET":
            return json_response("200 OK", {"faults": [f.as_json(now) for f in self.faults.active().values()]})
        if method == "POST":
            try:
                kind, fault_model, duration_s = parse_fault(
                    _read_json(environ, self.read_timeout_s), self._simulated_models
                )
            except InvalidFault as exc:
                raise HttpError("400 Bad Request", str(exc)) from None
            fault = self.faults.set(kind, fault_model, duration_s)
            lasting = f"for {duration_s:g}s" if duration_s is not None else "until cleared"
            log.info("fault %s injected on %s %s", kind, fault_model, lasting)
            return json_response("201 Created", {"fault": fault.as_json(now)})
        cleared = self.faults.clear(model)
        if model and not cleared:
            raise HttpError("404 Not Found", f"no fault on model {model!r}")
        for fault in cleared:
            log.info("fault %s on %s cleared", fault.kind, fault.model)
        return json_response("200 OK", {"cleared": [f.as_json(now) for f in cleared]})


def build(settings: config.Settings) -> BackendApp:
    """The app for `settings`; with `simulate`, its simulator thread is already running."""
    shared = settings.multiproc_dir
    metrics_registry = CollectorRegistry()
    if shared is None:
        exposition = metrics_registry
    else:
        # Each worker writes its samples to files in `shared`; a scrape reaching any
        # worker sums them all, so totals are right whichever worker served each call.
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition, path=str(shared))
    cap = ModelCap(settings.model_cap, shared / config.MODELS_FILE if shared else None)
    metrics = ModelMetrics(metrics_registry, cap)
    faults = simulator = runner = None
    if settings.simulate:
        faults = FaultBoard(shared / config.FAULTS_FILE if shared else None)
        simulator = Simulator(metrics, faults, seed=settings.seed)
        runner = SimulatorRunner(simulator, lock_file=shared / config.SIMULATOR_LOCK_FILE if shared else None)
        runner.start()
    metrics_auth = BearerAuth(settings.metrics_token, realm="metrics")
    if not metrics_auth.required:
        log.warning("GET /metrics is open to anyone: set MODELMON_METRICS_TOKEN or MODELMON_METRICS_TOKEN_FILE")
    api_auth = BearerAuth(settings.api_token, realm="api")
    if settings.simulate and not api_auth.required:
        log.warning("%s", FAULT_API_NEEDS_TOKEN)
    return BackendApp(
        metrics,
        exposition,
        metrics_auth=metrics_auth,
        api_auth=api_auth,
        faults=faults,
        simulated_models=simulator.models if simulator else (),
        runner=runner,
        read_timeout_s=settings.read_timeout_s,
    )


def from_env() -> BackendApp:
    """The app configured by the environment (see backend/README.md); gunicorn's factory."""
    return build(config.Settings.from_env())
