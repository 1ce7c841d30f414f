#!/usr/bin/env bash
# ensure-debian-packages.sh COMMAND:PACKAGE ...
# Installs each Debian PACKAGE whose COMMAND is missing, when running as root;
# otherwise stops with the apt-get line to run.
set -euo pipefail
missing=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "missing: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
  echo "(or point MODELMON_PROMTOOL / MODELMON_AMTOOL at promtool / amtool binaries)" >&2
  exit 1
fi
