#!/usr/bin/env bash
# Bring up what the tests need, idempotently: a Docker engine started the way
# DESIGN.md says (no bridge, no iptables), reachable on the default socket.
# Under CI=true anything missing is a failure; elsewhere it is a warning and the
# tests that need it are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=.testenv
PY=.venv/bin/python
mkdir -p "$STATE"

is_ci() { [ "${CI:-}" = "true" ]; }
say() { echo "testenv: $*" >&2; }
missing() {
  if is_ci; then say "FAIL: $*"; exit 1; fi
  say "warning: $* (tests that need it will be skipped)"
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then return 1; fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f "$STATE/apt-updated" ]; then apt-get update -qq && touch "$STATE/apt-updated"; fi
  apt-get install -y -qq --no-install-recommends "$@" >"$STATE/apt.log" 2>&1
}

engine_ping() {
  "$PY" - <<'PY' 2>/dev/null
import docker, sys
try:
    docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=2).ping()
except Exception:
    sys.exit(1)
PY
}

start_engine() {
  if engine_ping; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Debian's docker.io"
    apt_install docker.io || { missing "dockerd is not installed and cannot be installed (need root and apt)"; return 0; }
  fi
  say "starting dockerd --bridge=none --iptables=false --ip-masq=false"
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    if engine_ping; then say "docker engine is up"; return 0; fi
    sleep 0.5
  done
  tail -5 "$STATE/dockerd.log" >&2 || true
  missing "the Docker engine did not come up within 30s (see $STATE/dockerd.log)"
}

start_engine
