"""The committed prometheus.yml, pointed at processes on this machine.

`make up` and the end-to-end tests run the same configuration as docker compose;
only hosts, ports, file paths and (for tests) intervals differ.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def compose_prometheus_flag(name: str) -> str:
    """The value of a flag docker-compose.yml starts Prometheus with (`--name=value`)."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    [value] = [
        arg.split("=", 1)[1] for arg in compose["services"]["prometheus"]["command"] if arg.startswith(f"--{name}=")
    ]
    return value


# How long Prometheus keeps data: at least the longest SLO period, whose budget is read from
# that much data. Debian's default is 15 days, so `make up` and the test stacks pass the
# retention docker compose (and prometheus/Dockerfile) use, read from the compose file.
PROMETHEUS_RETENTION = compose_prometheus_flag("storage.tsdb.retention.time")


def local_prometheus_config(
    *,
    prometheus_port: int,
    backend_port: int,
    alertmanager_port: int,
    token_file: Path,
    interval: str | None = None,
    rules_dir: Path = REPO / "rules",
) -> dict:
    """prometheus/prometheus.yml with loopback targets, a rules/ folder and a local token file."""
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    if interval is not None:
        config["global"]["scrape_interval"] = interval
        config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(rules_dir / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{alertmanager_port}"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["prometheus"]["static_configs"][0]["targets"] = [f"127.0.0.1:{prometheus_port}"]
    backend = jobs["models-backend"]
    backend["authorization"]["credentials_file"] = str(token_file)
    backend["static_configs"][0]["targets"] = [f"127.0.0.1:{backend_port}"]
    return config


def rules_at_one_interval(source: Path, target: Path) -> Path:
    """The rule files of `source` with every group at the global evaluation interval.

    The tile and long-window groups run every 5m and 1m in production. A test stack that
    scrapes and evaluates every second compresses time; it compresses those groups too,
    as promtool runs them, or their first samples would come minutes into a seconds-long test.
    """
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yml")):
        rules = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in rules["groups"]:
            group.pop("interval", None)
        (target / path.name).write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return target


def local_alertmanager_config(receiver_url: str, source: Path = REPO / "alertmanager" / "alertmanager.yml") -> dict:
    """alertmanager/alertmanager.yml with every receiver replaced by the local webhook receiver.

    The routes, timings and inhibitions stay as committed, so alerts group and inhibit as in
    production; only delivery changes: the committed receivers read secret files that exist
    where the stack is deployed, not on this machine. Each receiver posts to its own path, so
    the local receiver can say where the notification would have gone.
    """
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    # Relative template paths are resolved against the config file, which now lives elsewhere.
    config["templates"] = [str(source.parent / pattern) for pattern in config.get("templates", [])]
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{receiver_url}/{r['name']}", "send_resolved": True}]}
        for r in config["receivers"]
    ]
    return config
