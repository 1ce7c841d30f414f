# The two set-up commands of the README work on a fresh Debian machine:
#   make rules   compile slos/ into every generated file
#   make test    lint, then the whole test suite (real promtool)
# Each bootstraps the virtual environment and, as root, the Debian packages.

VENV := .venv
BIN := $(VENV)/bin
# The pinned tools (tools/versions.toml, built by `make tools`) come first wherever they are built
# (MODELMON_TOOLS moves their folder, as for tools/build.py).
MODELMON_TOOLS ?= $(CURDIR)/.tools/bin
export PATH := $(MODELMON_TOOLS):$(PATH)
# A tool given by its environment variable is not installed from Debian.
DEBIAN := $(if $(MODELMON_PROMTOOL),,promtool:prometheus) $(if $(MODELMON_AMTOOL),,amtool:prometheus-alertmanager)

.PHONY: .debian-packages tools up reload rules check validate test lint format bench promtool-tests docs docs-serve constraints

# constraints.txt pins every version the environment installs; pyproject.toml has the ranges.
$(VENV)/.installed: pyproject.toml constraints.txt scripts/bootstrap.sh
	scripts/bootstrap.sh

# The newest versions pyproject.toml's ranges allow, into constraints.txt (then run check and test).
constraints:
	scripts/refresh-constraints.sh

# promtool and amtool are needed by `make rules` too: the build proves every rule
# and the Alertmanager config with them before replacing the committed files.
.debian-packages:
	@scripts/ensure-debian-packages.sh $(DEBIAN)

rules: $(VENV)/.installed .debian-packages
	$(BIN)/modelmon build

check: $(VENV)/.installed .debian-packages
	$(BIN)/modelmon build --check

validate: $(VENV)/.installed .debian-packages
	$(BIN)/modelmon validate

promtool-tests: $(VENV)/.installed .debian-packages
	$(BIN)/modelmon test

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Prometheus, promtool, Alertmanager, amtool and mimirtool at the versions of
# tools/versions.toml, built from their Go modules into .tools/bin/ (reused once built; about
# 14 minutes on 2 cores with a cold Go cache, under a minute with a warm one). Without Go it
# says what to install or to point MODELMON_BIN_<TOOL> at.
tools:
	@python3 tools/build.py --for test

# The tests run on both engines: the pinned builds (what docker compose deploys) and Debian's
# Prometheus 2.42 / Alertmanager 0.25, so both are needed by path.
# Four workers on two cores: most of the suite waits on real Prometheus and Alertmanager
# evaluating, so more workers than cores halve its time (15 -> 7 minutes on 2 cores); each test
# takes free ports and its own folders. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4
test: lint tools .debian-packages
	@scripts/ensure-debian-packages.sh /usr/bin/promtool:prometheus /usr/bin/prometheus-alertmanager:prometheus-alertmanager vmalert:victoria-metrics
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The stack from local binaries (no Docker): backend, Prometheus, Alertmanager,
# Grafana when installed. Ctrl-C stops it; data stays under .run/. Other ports:
# `make up PROMETHEUS_PORT=9091` (also BACKEND_PORT, ALERTMANAGER_PORT, GRAFANA_PORT);
# any other option of stack/up.py through ARGS (`make up ARGS='--run-dir /tmp/run'`).
UP_PORTS = $(if $(BACKEND_PORT),--backend-port=$(BACKEND_PORT)) \
	$(if $(PROMETHEUS_PORT),--prometheus-port=$(PROMETHEUS_PORT)) \
	$(if $(ALERTMANAGER_PORT),--alertmanager-port=$(ALERTMANAGER_PORT)) \
	$(if $(GRAFANA_PORT),--grafana-port=$(GRAFANA_PORT))

up: $(VENV)/.installed .debian-packages
	@scripts/ensure-debian-packages.sh prometheus-alertmanager:prometheus-alertmanager
	$(BIN)/python -m stack.up $(UP_PORTS) $(ARGS)

# A changed spec into the running `make up` stack: modelmon build, then Prometheus
# and Alertmanager reload (POST /-/reload), each reporting success or its error.
reload: $(VENV)/.installed .debian-packages
	$(BIN)/python -m stack.reload $(ARGS)

# The documentation and runbook site (mkdocs.yml). --strict: a broken link or a
# runbook an alert points at but the site lacks fails the build. site/ is ignored.
docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

# Serves the site where the spec's default runbook_base_url points (8000 is the backend's).
docs-serve: $(VENV)/.installed
	$(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8001

bench: $(VENV)/.installed tools
	@python3 tools/build.py --for bench
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/compile_bench.py
