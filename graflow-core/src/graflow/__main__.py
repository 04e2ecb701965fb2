"""``python -m graflow``: the ``graflow`` command line."""

from __future__ import annotations

import sys

from graflow.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
