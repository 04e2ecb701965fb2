"""Helpers shared by the end-to-end tests, imported as ``tests.e2e.e2e_support`` (unlike conftest)."""

from __future__ import annotations

import os

from tests.support.fleet import worker_command

__all__ = ["REDIS_HOST", "REDIS_PORT", "worker_command"]

REDIS_HOST = os.environ.get("GRAFLOW_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GRAFLOW_TEST_REDIS_PORT", "6379"))
