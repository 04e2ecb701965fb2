"""Waiting for something that happens in another thread, process or server: poll, never sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two polls: short next to any timeout a test gives, long enough not to spin.
_INTERVAL = 0.01


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Fails the test with ``AssertionError`` naming ``what`` once ``timeout`` seconds have
    passed, so a test can wait and use the result in one line::

        deliveries = wait_until(lambda: queue.fetch("w1"), 10, "a delivery for w1")
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(_INTERVAL)
