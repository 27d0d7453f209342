#!/usr/bin/env bash
# Create the base image local toolbox builds use in tests: Debian bookworm (minbase)
# with python3 + venv and Node.js, made with debootstrap and 'docker import' because no
# image registry is reachable here. Once per machine: the image is tagged with a hash
# of the recipe below, and a machine that already has that tag does no work at all.
#
#   scripts/base-image.sh            build if needed; print the image reference
#
# Tags: tbx-base:<sha12 of the recipe> and tbx-base:test (what the tests use).
# The root file system is assembled under .testenv/ (gitignored) and removed afterwards,
# also when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT="$PWD/scripts/base-image.sh"

STATE=.testenv
REPO=tbx-base
TEST_TAG="$REPO:test"

say() { echo "base-image: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

# recipe:begin — everything between these markers decides the image's content; editing
# any of it (even a comment) changes the tag and so rebuilds on the next run.
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
VARIANT=minbase
PACKAGES=python3,python3-venv,nodejs,git,ca-certificates,tzdata
CHANGES=(
  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "ENV LANG=C.UTF-8"
  "ENV PYTHONDONTWRITEBYTECODE=1"
  "WORKDIR /"
  "CMD [\"/bin/bash\"]"
)
# Trimmed after debootstrap: apt's caches and lists (no use without network in builds),
# docs, man pages and translations (LANG is C.UTF-8): nothing python3, venv, node or git
# needs at run time.
trim_rootfs() {
  local root=$1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  # Docker bind-mounts these at run time; an imported copy of the host's would leak it.
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  echo "Etc/UTC" >"$root/etc/timezone"
  ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
}
# recipe:end

RECIPE_HASH=$(sed -n '/^# recipe:begin/,/^# recipe:end/p' "$SCRIPT" | sha256sum | cut -c1-12)
HASH_TAG="$REPO:$RECIPE_HASH"

command -v docker >/dev/null 2>&1 || die "the docker CLI is missing; install docker.io (scripts/testenv.sh does it)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}; run scripts/testenv.sh first"

tag_test() {
  docker tag "$HASH_TAG" "$TEST_TAG"
  echo "$HASH_TAG"
}

if docker image inspect "$HASH_TAG" >/dev/null 2>&1; then
  tag_test
  exit 0
fi

mkdir -p "$STATE"
# Two set-ups racing (a developer's and a CI run on one machine) must not debootstrap twice
# into one place; the second waits and then finds the image.
exec 9>"$STATE/base-image.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 1800 9 || die "another base-image.sh held $STATE/base-image.lock for 30 minutes"
  if docker image inspect "$HASH_TAG" >/dev/null 2>&1; then
    tag_test
    exit 0
  fi
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "debootstrap is missing; run: sudo apt-get install debootstrap"
  say "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } >"$STATE/apt-debootstrap.log" 2>&1 ||
    die "cannot install debootstrap (see $STATE/apt-debootstrap.log)"
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root (device nodes, chroot); run this script as root"

ROOTFS="$PWD/$STATE/base-rootfs.$$"
LOG="$STATE/base-image.log"

DEBOOTSTRAP_PID=
cleanup() {
  # Stop an unfinished debootstrap first (it unmounts what it mounted on its way out),
  # then make sure nothing is still mounted: never delete through a mount.
  local mnt
  if [ -n "$DEBOOTSTRAP_PID" ] && kill -0 "$DEBOOTSTRAP_PID" 2>/dev/null; then
    kill -TERM -- "-$DEBOOTSTRAP_PID" 2>/dev/null || kill -TERM "$DEBOOTSTRAP_PID" 2>/dev/null || true
    wait "$DEBOOTSTRAP_PID" 2>/dev/null || true
  fi
  if [ -d "$ROOTFS" ]; then
    for mnt in $(awk -v root="$ROOTFS" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$mnt" 2>/dev/null || true
    done
    rm -rf --one-file-system "$ROOTFS"
  fi
}
trap cleanup EXIT
trap 'say "interrupted; removing $ROOTFS"; exit 130' INT TERM

mkdir -p "$STATE/debootstrap-cache"
say "debootstrap $VARIANT $SUITE with $PACKAGES (a few minutes; log in $LOG)"
started=$(date +%s)
# In the background so that a signal is handled now, not when debootstrap is done; in a
# process group of its own so that stopping it also stops the dpkg it is waiting for.
setsid debootstrap --variant="$VARIANT" --include="$PACKAGES" \
  --cache-dir="$PWD/$STATE/debootstrap-cache" "$SUITE" "$ROOTFS" "$MIRROR" >"$LOG" 2>&1 &
DEBOOTSTRAP_PID=$!
if ! wait "$DEBOOTSTRAP_PID"; then
  DEBOOTSTRAP_PID=
  tail -n 5 "$LOG" >&2 || true
  # debootstrap keeps its own detailed log inside the target.
  [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && cp "$ROOTFS/debootstrap/debootstrap.log" "$STATE/debootstrap-detail.log"
  die "debootstrap failed (see $LOG and $STATE/debootstrap-detail.log); check that $MIRROR is reachable"
fi
DEBOOTSTRAP_PID=
for tool in python3 node git; do
  chroot "$ROOTFS" "$tool" --version >/dev/null 2>&1 || die "the new root file system has no working $tool (see $LOG)"
done
chroot "$ROOTFS" python3 -c "import venv, ensurepip" 2>/dev/null || die "python3 in the new root file system cannot create venvs"
trim_rootfs "$ROOTFS"

change_args=()
for change in "${CHANGES[@]}"; do change_args+=(--change "$change"); done
change_args+=(--change "LABEL io.tbx.base=true io.tbx.recipe=$RECIPE_HASH")
say "importing into $HASH_TAG"
tar --numeric-owner --xattrs -C "$ROOTFS" -c . |
  docker import "${change_args[@]}" --message "tbx base image, recipe $RECIPE_HASH" - "$HASH_TAG" >/dev/null ||
  die "docker import failed; is there space left for images (docker system df)?"
say "built $HASH_TAG in $(($(date +%s) - started))s"
tag_test
