#!/usr/bin/env bash
# Rewrite constraints.txt with the newest versions pyproject.toml's ranges allow:
# installs modelmon[dev] into a scratch virtual environment and freezes it.
# `make constraints` runs it; commit the result once `make check` and `make test` pass.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m venv "$scratch/venv"
# From a copy: setuptools would leave build/ and *.egg-info in the checkout.
mkdir "$scratch/src"
cp -r pyproject.toml README.md modelmon "$scratch/src/"
"$scratch/venv/bin/python" -m pip install -q --disable-pip-version-check "$scratch/src[dev]"
{
  echo "# Exact versions of everything the development environment installs (modelmon[dev])."
  echo "# The generated files are built, and the tests run, with these: scripts/bootstrap.sh"
  echo "# installs with -c constraints.txt, and so does tests/test_wheel.py. pyproject.toml"
  echo "# keeps compatible ranges for people who install modelmon as a tool."
  echo "# Refresh: make constraints (scripts/refresh-constraints.sh), then make check and make test."
  "$scratch/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude modelmon
} > constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
