"""Helpers shared by the end-to-end tests, imported as ``tests.e2e.e2e_support`` (unlike conftest)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["REDIS_HOST", "REDIS_PORT", "ping", "worker_command"]

REDIS_HOST = os.environ.get("GRAFLOW_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GRAFLOW_TEST_REDIS_PORT", "6379"))


def ping(host: str, port: int) -> bool:
    try:
        import redis

        return bool(redis.Redis(host=host, port=port, socket_connect_timeout=1).ping())
    except Exception:
        return False


def worker_command() -> list[str]:
    """The installed console script when there is one, else ``python -m graflow_worker``."""
    script = Path(sys.executable).with_name("graflow-worker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graflow_worker"]
