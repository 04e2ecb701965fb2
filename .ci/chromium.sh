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
TAG=chromium
. "$(dirname "$0")/lib.sh"

browser=$(ensure_tool GRAFLOW_CHROMIUM chromium chromium)
"$browser" --headless --no-sandbox --disable-gpu --version
say "ready"
