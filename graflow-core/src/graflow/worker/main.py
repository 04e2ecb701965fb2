"""``python -m graflow.worker.main``: runs the graflow-worker CLI when it is installed."""

from __future__ import annotations

import sys

from graflow._alias import load_plugin_attribute
from graflow.exceptions import PluginNotInstalledError


def main() -> int:
    try:
        worker_main = load_plugin_attribute("graflow_worker.cli", "main", "graflow-worker")
    except PluginNotInstalledError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return int(worker_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
