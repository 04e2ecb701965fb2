#!/usr/bin/env bash
# Create (idempotently) the virtualenv holding the published peer, graflow==0.2.0,
# and print the path of its python interpreter on stdout (last line).
#
# Why a separate venv: the peer and our implementation share the import name
# `graflow`, so they can never live in the same interpreter. The benchmark
# harness (benchmarks/run_core.py) runs the same script under both.
#
# Usage: bash benchmarks/peer_env.sh        # -> /work/.peer-venv/bin/python
# Env:   GRAFLOW_PEER_VENV   venv location (default /work/.peer-venv)
#        GRAFLOW_PEER_PYTHON base interpreter (default python3)
set -euo pipefail

PEER_VERSION="0.2.0"
VENV="${GRAFLOW_PEER_VENV:-/work/.peer-venv}"
BASE_PY="${GRAFLOW_PEER_PYTHON:-python3}"
PY="${VENV}/bin/python"

installed_version() {
    # Prints the installed peer version, or nothing if it is absent/broken.
    "${PY}" -c 'import importlib.metadata as m; print(m.version("graflow"))' 2>/dev/null || true
}

if [[ ! -x "${PY}" ]]; then
    echo "peer_env: creating ${VENV}" >&2
    "${BASE_PY}" -m venv "${VENV}" >&2
fi

if [[ "$(installed_version)" != "${PEER_VERSION}" ]]; then
    echo "peer_env: installing graflow==${PEER_VERSION} into ${VENV}" >&2
    "${PY}" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "${PY}" -m pip install --quiet --disable-pip-version-check "graflow==${PEER_VERSION}" >&2
fi

# Fail loudly here rather than inside a benchmark run if the peer cannot import.
"${PY}" -c 'import graflow.core.decorators, graflow.core.workflow' >&2

echo "${PY}"
