#!/usr/bin/env bash
# Create (idempotently) the virtualenv holding Celery 5 with its Redis transport, for
# benchmarks/bench_distributed.py, and print the path of its python interpreter (last line).
#
# Why a separate venv: the comparison must not vendor Celery nor let its dependencies
# (kombu, billiard, redis pins) change what our own interpreter imports.
#
# With hiredis, as graflow-redis has it: the comparison is of the two designs, not of the parsers.
# Usage: bash benchmarks/celery_env.sh        # -> /work/.celery-venv/bin/python
# Env:   GRAFLOW_CELERY_VENV    venv location (default /work/.celery-venv)
#        GRAFLOW_CELERY_PYTHON  base interpreter (default python3)
set -euo pipefail

CELERY_SPEC="celery[redis]>=5.3,<6"
VENV="${GRAFLOW_CELERY_VENV:-/work/.celery-venv}"
BASE_PY="${GRAFLOW_CELERY_PYTHON:-python3}"
PY="${VENV}/bin/python"

installed_major() {
    "${PY}" -c 'import celery; print(celery.__version__.split(".")[0])' 2>/dev/null || true
}

if [[ ! -x "${PY}" ]]; then
    echo "celery_env: creating ${VENV}" >&2
    "${BASE_PY}" -m venv "${VENV}" >&2
fi

if [[ "$(installed_major)" != "5" ]]; then
    echo "celery_env: installing ${CELERY_SPEC} into ${VENV}" >&2
    "${PY}" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "${PY}" -m pip install --quiet --disable-pip-version-check "${CELERY_SPEC}" psutil >&2
fi
# The same C reply parser graflow-redis installs (redis[hiredis]): both sides parse Redis alike.
if ! "${PY}" -c 'import hiredis' 2>/dev/null; then
    "${PY}" -m pip install --quiet --disable-pip-version-check hiredis >&2
fi

"${PY}" -c 'import celery, redis, kombu.transport.redis, hiredis' >&2

echo "${PY}"
