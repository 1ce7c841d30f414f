"""Real processes on loopback: free ports, bounded waits, process groups killed on exit.

Used by `make up` and by the end-to-end tests. Every wait has a deadline and every
process is stopped with its whole process group, so nothing hangs or stays behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from stack.config import PROMETHEUS_RETENTION
from tools import build as tools


def binary(name: str, debian: str | None = None) -> str:
    """The pinned build of tools/versions.toml when it is there (`make tools`), else the one on
    PATH, else Debian's (whose package names Alertmanager prometheus-alertmanager)."""
    return tools.installed(name) or shutil.which(name) or shutil.which(debian or name) or f"/usr/bin/{debian or name}"


PROMETHEUS = binary("prometheus")
ALERTMANAGER = binary("alertmanager", "prometheus-alertmanager")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`, tried the way our services bind it.

    SO_REUSEADDR as Go and gunicorn set it: connections of a stopped run lingering in
    TIME_WAIT do not count as taken, a listener on the port (or on 0.0.0.0) does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def wait_until(what: str, check: Callable[[], object], timeout: float, every: float = 0.25) -> object:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # the service may still be starting
            last_error = err
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def get_json(url: str, timeout: float = 5.0, **params: str) -> object:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{query}", timeout=timeout) as response:
        return json.load(response)


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator:
    """Run `args` in its own process group, output to `log`; kill the group on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def prometheus(
    config: dict,
    workdir: Path,
    port: int | None = None,
    retention: str | None = PROMETHEUS_RETENTION,
    binary: str | None = None,
) -> Iterator[str]:
    """A real Prometheus (`binary`, PROMETHEUS unless given: the pinned build, else Debian's) with
    `config`, on loopback; yields its URL.

    It keeps data for `retention`, docker compose's by default; None leaves Prometheus' own default (15d).
    """
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    args = [
        binary or PROMETHEUS,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # POST /-/reload applies regenerated rules (`make reload`), as in docker compose.
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    if retention is not None:
        args.append(f"--storage.tsdb.retention.time={retention}")
    url = f"http://127.0.0.1:{port}"
    with process(args, workdir / "prometheus.log"):
        wait_until("Prometheus to be ready", lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2), 30)
        yield url


def query(url: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} if at is None else {"query": expr, "time": repr(at)}
    body = get_json(f"{url}/api/v1/query", **params)
    assert body["status"] == "success", body
    return body["data"]["result"]


def alertmanager_command(config: Path, storage: Path, port: int, binary: str | None = None) -> list[str]:
    """A single Alertmanager on loopback: no gossip port, no waiting for peers."""
    return [
        binary or ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


def backend_command(
    port: int,
    token_file: Path,
    multiproc_dir: Path,
    simulate: bool = False,
    seed: int | None = None,
    api_token_file: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The backend under gunicorn (two workers, metrics shared through `multiproc_dir`): args and env.
    `api_token_file` guards /v1/* (the fault API is off without it)."""
    env = {
        "PORT": str(port),
        "MODELMON_HOST": "127.0.0.1",
        "MODELMON_METRICS_TOKEN_FILE": str(token_file),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    if api_token_file is not None:
        env["MODELMON_API_TOKEN_FILE"] = str(api_token_file)
    if simulate:
        env["MODELMON_SIMULATE"] = "1"
    if seed is not None:
        env["MODELMON_SIMULATE_SEED"] = str(seed)
    args = [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.app:from_env()"]
    return args, env


def send_json(url: str, method: str, body: object | None = None, token_file: Path | None = None) -> None:
    """One JSON request (to the backend's fault API, say), with the bearer token `token_file` holds;
    fails on any answer but 2xx."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token_file is not None:
        headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status < 300, response.status
