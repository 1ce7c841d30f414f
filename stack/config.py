"""The committed prometheus.yml, pointed at processes on this machine.

`make up` and the end-to-end tests run the same configuration as docker compose;
only hosts, ports, file paths and (for tests) intervals differ.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


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
