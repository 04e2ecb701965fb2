#!/usr/bin/env bash
# Bring up a local Docker engine and the test image graflow-docker's tests use.
#
# Idempotent: every step checks first and is skipped when already done, so the
# tests, `.ci/run` and developers can call it freely. No registry is needed:
# the image is built from a Debian bookworm minbase root (python3 only), which
# has the same Python minor version (3.11) as the development virtualenv.
#
# Environment overrides:
#   GRAFLOW_DOCKER_TEST_IMAGE  image name to build   (default graflow-test-python:3.11)
#   GRAFLOW_DEBOOTSTRAP_DIR    root filesystem cache (default /var/cache/graflow-debootstrap)
#   GRAFLOW_DOCKERD_LOG        dockerd log file      (default /var/log/graflow-dockerd.log)
set -euo pipefail

IMAGE="${GRAFLOW_DOCKER_TEST_IMAGE:-graflow-test-python:3.11}"
ROOTFS="${GRAFLOW_DEBOOTSTRAP_DIR:-/var/cache/graflow-debootstrap}"
DOCKERD_LOG="${GRAFLOW_DOCKERD_LOG:-/var/log/graflow-dockerd.log}"
SUITE=bookworm

say() { echo "[docker-engine] $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. Packages: the daemon (docker.io) and the tool that builds the image root.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
    say "dockerd and debootstrap already installed"
fi

# 2. The daemon: start it in the background unless one already answers.
if docker info >/dev/null 2>&1; then
    say "engine already running"
else
    say "starting dockerd (log: $DOCKERD_LOG)"
    as_root sh -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 &"
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        say "dockerd did not come up within 60 s; last log lines:"
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
    say "engine is up"
fi

# 3. The test image: a bare Python with nothing but the interpreter.
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "image $IMAGE already present"
else
    if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
        say "debootstrap $SUITE into $ROOTFS (a few minutes)"
        as_root rm -rf "$ROOTFS"
        as_root mkdir -p "$ROOTFS"
        as_root debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS"
    else
        say "reusing debootstrap root $ROOTFS"
    fi
    say "importing $ROOTFS as $IMAGE"
    as_root tar -C "$ROOTFS" -c . | docker import - "$IMAGE" >/dev/null
fi

say "smoke test: docker run --rm $IMAGE python3 --version"
docker run --rm "$IMAGE" python3 --version
say "ready"
