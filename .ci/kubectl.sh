#!/usr/bin/env bash
# Make sure a kubectl is installed, for tests/deploy: they render every Kustomize overlay
# of graflow-worker/deploy/kubernetes with `kubectl kustomize`. No cluster is needed or
# contacted.
#
# Idempotent, like docker-engine.sh: nothing happens when `kubectl` is already there (any
# version: the overlays are written for kustomize v2.0.3 and later). Otherwise Debian's
# kubernetes-client is installed, whose kubectl 1.20 bundles kustomize v2.0.3.
#
# Environment overrides:
#   GRAFLOW_KUBECTL   a kubectl to use instead (then nothing is installed; the tests use it too)
set -euo pipefail
TAG=kubectl
. "$(dirname "$0")/lib.sh"

kubectl=$(ensure_tool GRAFLOW_KUBECTL kubectl kubernetes-client)
"$kubectl" version --client
say "ready"
