"""Helpers shared by the end-to-end tests, imported as ``tests.e2e.e2e_support`` (unlike conftest)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["REDIS_HOST", "REDIS_PORT", "worker_command"]

REDIS_HOST = os.environ.get("GRAFLOW_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GRAFLOW_TEST_REDIS_PORT", "6379"))


def worker_command() -> list[str]:
    """The installed console script when there is one, else ``python -m graflow_worker``."""
    script = Path(sys.executable).with_name("graflow-worker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graflow_worker"]
