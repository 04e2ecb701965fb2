"""Keys a test wrote to the shared Redis: each test works under a prefix of its own and removes it.

The shared server is never flushed (other suites and people use it); deleting by prefix
is what cleans up after a test.
"""

from __future__ import annotations

import redis


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key of ``prefix``: ``{PREFIX}:...`` and the ones tagged apart, ``{PREFIX:...}...``."""
    keys = [
        key for pattern in ("{%s}:*", "{%s:*") for key in client.scan_iter(match=pattern % prefix, count=1000)
    ]
    if keys:
        client.delete(*keys)
