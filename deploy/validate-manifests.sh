#!/usr/bin/env bash
# Validates the deployment files (deploy/kubernetes/, deploy/compose/) against their schemas and
# against the rest of the repository; CI runs it, with and without --self-test.
#
#   deploy/validate-manifests.sh [--self-test] [--kubernetes-version 1.34] [--no-kubectl]
#
# Checks (deploy/validate_manifests.py does them; one line each, exit 1 on any failure):
#   kustomize              renders deploy/kubernetes itself (kustomize need not be installed) and,
#                          when kubectl is, compares with `kubectl kustomize`
#   kubernetes-schema      built-in objects, strict, with kubernetes-validate's schemas
#   crd-schema             ScaledObject, TriggerAuthentication, ServiceMonitor against the CRDs
#                          vendored in deploy/kubernetes/schemas/ (unknown fields fail)
#   compose-schema         compose.yaml against the Compose specification's schema
#   env-names              every TSYNC_* name used is in README.md's configuration table
#   probe-paths            every probe path is served by the process (its router.get calls)
#   topology-copy          the ConfigMap's and compose's topology.json are the repository's
#   broker-and-table-names queue/exchange names are topology.json's; the KEDA query's table and
#                          columns exist in SchemaMigrations.swift
#   metrics-ports          probes, containerPorts and published ports match --metrics-port
#   service-monitor        the ServiceMonitor selects the three metrics Services and port names
#   references, commands, keda, lifecycle, security, labels, secret-placeholders, compose-wiring
# --self-test breaks copies of the files one way at a time and expects each break caught.
#
# Needs python3 with venv and PyPI: the packages go to a virtual environment under
# ${XDG_CACHE_HOME:-$HOME/.cache}/tearsheet-sync/venv, made once and reused; Debian's
# python3-venv is installed when venv is missing (as root, or through sudo).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${XDG_CACHE_HOME:-$HOME/.cache}/tearsheet-sync/venv
python=${PYTHON:-python3}
requirements=("kubernetes-validate==1.37.0" "jsonschema>=4.18,<5" "PyYAML>=6,<7")

say() { echo "validate-manifests: $*" >&2; }

make_venv() {
  "$python" -m venv "$venv" >/dev/null 2>&1 && return 0
  rm -rf "$venv"
  command -v apt-get >/dev/null || { say "$python -m venv failed and there is no apt-get to install python3-venv"; exit 1; }
  say "$python -m venv failed: installing Debian's python3-venv"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  "$python" -m venv "$venv"
}

# A venv whose interpreter went away (a Python upgrade) is made again.
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  make_venv
fi
stamp="$venv/.tearsheet-sync-requirements"
if [ "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]; then
  say "installing ${requirements[*]} into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}"
  echo "${requirements[*]}" > "$stamp"
fi

exec "$venv/bin/python" "$repo/deploy/validate_manifests.py" --root "$repo" "$@"
