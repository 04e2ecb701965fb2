"""``python -m graflow_worker``: the same as the ``graflow-worker`` command."""

from __future__ import annotations

import sys

from graflow_worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
