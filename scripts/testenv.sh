#!/usr/bin/env bash
# Bring up what the tests need, idempotently: a Docker engine started the way
# DESIGN.md says (no bridge, no iptables), reachable on the default socket; the base
# image local builds use (scripts/base-image.sh); and a loopback image registry
# (Debian's docker-registry on 127.0.0.1:5000, storage under .testenv/) for pull paths.
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

host_tools() {
  # npm fetches npm servers' packages on the host; git builds the tests' sample repository;
  # Chromium follows OAuth sign-ins; sshd plays the droplets and adopted SSH hosts.
  local need=()
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v git >/dev/null 2>&1 || need+=(git)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt_install "${need[@]}" || missing "${need[*]} not installed and cannot be installed (need root and apt)"
  fi
}

host_tools
start_engine

free_ssh_port() {
  # The simulated droplets are sshd processes on port 22 of loopback addresses; a system
  # sshd bound to 0.0.0.0:22 (started by the openssh-server package) would take it.
  if ss -ltn 2>/dev/null | grep -qE '(0\.0\.0\.0|\*|\[::\]):22\b'; then
    if [ "${CI:-}" = "true" ]; then
      say "stopping the system sshd (port 22 is needed by the droplet simulation)"
      service ssh stop >/dev/null 2>&1 || pkill -f '^sshd: /usr/sbin/sshd' || true
    else
      say "note: a system sshd listens on *:22; the droplet tests need port 22 on 127.x addresses"
    fi
  fi
}
free_ssh_port

build_base_image() {
  if ! engine_ping; then return 0; fi  # already reported by start_engine
  scripts/base-image.sh >/dev/null || missing "the base image tbx-base:test could not be built (see .testenv/base-image.log)"
}

REGISTRY_ADDR=127.0.0.1:5000

registry_ping() {
  "$PY" - "$REGISTRY_ADDR" <<'PY' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
try:
    with opener.open(f"http://{sys.argv[1]}/v2/", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

start_registry() {
  if registry_ping; then return 0; fi
  if ! command -v docker-registry >/dev/null 2>&1; then
    say "installing Debian's docker-registry"
    apt_install docker-registry || { missing "docker-registry is not installed and cannot be installed (need root and apt)"; return 0; }
    # Where the package's own service was started (a machine without policy-rc.d), it
    # holds :5000 on every interface with auth; ours replaces it on loopback only.
    service docker-registry stop >/dev/null 2>&1 || true
  fi
  mkdir -p "$STATE/registry"
  # Our own configuration: loopback only, no auth, storage in the work tree's .testenv.
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $PWD/$STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  say "starting docker-registry on $REGISTRY_ADDR"
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 1 40); do
    if registry_ping; then say "registry is up"; return 0; fi
    sleep 0.25
  done
  tail -5 "$STATE/registry.log" >&2 || true
  missing "docker-registry did not answer on $REGISTRY_ADDR within 10s (see $STATE/registry.log)"
}

build_base_image
start_registry

# npm tool sets the tests run on the host (tests/support/npm/*: an independent OAuth
# provider and the Node 22 it needs), from the npm registry, cached by content hash.
npm_tool_sets() {
  if ! command -v npm >/dev/null 2>&1; then return 0; fi  # already reported by host_tools
  "$PY" -m tests.support.npm_tools >"$STATE/npm-tools.log" 2>&1 \
    || missing "the npm tool sets could not be installed (see $STATE/npm-tools.log)"
}
npm_tool_sets
