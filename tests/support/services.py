"""Outside services a test needs (Redis, Docker): whether one answers, and what to do when not.

A missing service skips the test on a developer's machine, with the reason and how to
start it. Under ``CI=true`` it fails the test instead: CI must never pass by skipping
the tests that talk to a real Redis or a real Docker engine.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    """Skip the test because a service is missing, or fail it when ``CI=true``.

    ``message`` says what is missing and how to provide it::

        if not ping_redis(url):
            missing(f"no Redis at {url}")
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def ping_redis(url: str) -> bool:
    """Whether a Redis server answers at ``url`` (``redis://host:port/db``) within a second."""
    # Imported here, not at the top: the core and docker environments have no Redis client.
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def require_redis(host: str, port: int) -> str:
    """The URL of database 0 on the Redis at ``host:port``; :func:`missing` when none answers."""
    url = f"redis://{host}:{port}/0"
    if not ping_redis(url):
        missing(
            f"no Redis at {host}:{port}; start one with "
            f"`redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save '' --appendonly no`"
        )
    return url
