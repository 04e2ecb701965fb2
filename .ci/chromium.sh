#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for graflow-ui's browser tests.
#
# Idempotent, like docker-engine.sh: nothing happens when `chromium` is already there.
# Playwright (from PyPI) drives this browser through its executable path; nothing here,
# nor in the tests, downloads a browser build of its own.
#
# Environment overrides:
#   GRAFLOW_CHROMIUM   a Chromium to use instead (then nothing is installed)
set -euo pipefail

say() { echo "[chromium] $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -n "${GRAFLOW_CHROMIUM:-}" ]; then
    say "using GRAFLOW_CHROMIUM=$GRAFLOW_CHROMIUM"
    browser="$GRAFLOW_CHROMIUM"
elif command -v chromium >/dev/null 2>&1; then
    say "chromium already installed"
    browser=chromium
else
    say "installing chromium"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    browser=chromium
fi

"$browser" --headless --no-sandbox --disable-gpu --version
say "ready"
