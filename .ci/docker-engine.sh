#!/usr/bin/env bash
# Bring up a local Docker engine and the test images graflow-docker's tests use.
#
# Idempotent: every step checks first and is skipped when already done, so the
# tests, `.ci/run` and developers can call it freely. No registry is needed:
# each image is a Debian minbase root with nothing but python3, imported with
# `docker import`:
#   graflow-test-python:3.11  bookworm, the same minor version as the dev virtualenv
#   graflow-test-python:3.13  trixie, a *different* minor version (cross-version tests)
#
# Environment overrides:
#   GRAFLOW_DOCKER_TEST_IMAGE    main image name      (default graflow-test-python:3.11)
#   GRAFLOW_DOCKER_OTHER_IMAGE   other-version image  (default graflow-test-python:3.13;
#                                set it to "" to skip building it)
#   GRAFLOW_DEBOOTSTRAP_CACHE    root filesystem cache (default /var/cache/graflow-debootstrap)
#   GRAFLOW_DOCKERD_LOG          dockerd log file      (default /var/log/graflow-dockerd.log)
set -euo pipefail

IMAGE="${GRAFLOW_DOCKER_TEST_IMAGE:-graflow-test-python:3.11}"
OTHER_IMAGE="${GRAFLOW_DOCKER_OTHER_IMAGE-graflow-test-python:3.13}"
CACHE="${GRAFLOW_DEBOOTSTRAP_CACHE:-/var/cache/graflow-debootstrap}"
DOCKERD_LOG="${GRAFLOW_DOCKERD_LOG:-/var/log/graflow-dockerd.log}"

TAG=docker-engine
. "$(dirname "$0")/lib.sh"

# 1. Packages: the daemon (docker.io) and the tool that builds the image root.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    say "dockerd and debootstrap already installed"
fi

# 2. The daemon: start it in the background unless one already answers.
if docker info >/dev/null 2>&1; then
    say "engine already running"
else
    # A daemon killed outright (as at the end of a session) leaves its pid file behind,
    # and dockerd refuses to start while it exists.
    pidfile=/var/run/docker.pid
    if [ -f "$pidfile" ] && ! as_root kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "removing stale $pidfile"
        as_root rm -f "$pidfile"
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    as_root sh -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 & echo \$! >'$DOCKERD_LOG.pid'"
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        as_root kill -0 "$(cat "$DOCKERD_LOG.pid")" 2>/dev/null || break  # it exited: no point waiting
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        say "dockerd did not come up; last lines of $DOCKERD_LOG:"
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
    say "engine is up"
fi

# 3. The test images: a bare Python with nothing but the interpreter.
build_image() {  # build_image SUITE IMAGE
    local suite="$1" image="$2" rootfs="$CACHE/$1"
    if docker image inspect "$image" >/dev/null 2>&1; then
        say "image $image already present"
        return
    fi
    # The marker sits beside the root, not in it, so it does not end up in the image;
    # without it a root left by an interrupted debootstrap is built again.
    if [ ! -f "$rootfs.complete" ]; then
        say "debootstrap $suite into $rootfs (a few minutes)"
        as_root rm -rf "$rootfs"
        as_root mkdir -p "$rootfs"
        as_root debootstrap --variant=minbase --include=python3 "$suite" "$rootfs"
        as_root touch "$rootfs.complete"
    else
        say "reusing debootstrap root $rootfs"
    fi
    say "importing $rootfs as $image"
    # CMD makes `docker run IMAGE` (no command) start Python, as official Python images do.
    as_root tar -C "$rootfs" -c . | docker import --change 'CMD ["python3"]' - "$image" >/dev/null
}

build_image bookworm "$IMAGE"
if [ -n "$OTHER_IMAGE" ]; then
    build_image trixie "$OTHER_IMAGE"
fi

for image in "$IMAGE" ${OTHER_IMAGE:+"$OTHER_IMAGE"}; do
    say "smoke test: docker run --rm $image python3 --version"
    docker run --rm "$image" python3 --version
done
say "ready"
