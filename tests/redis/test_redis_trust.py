"""Secure by default: without a secret key, Graflow reads pickles only from a Redis on loopback.

No connection is made when a queue, channel or store is built, so a Redis that is not on
loopback is named here by address alone (documentation addresses, RFC 5737, never reached).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import redis

from graflow.exceptions import ConfigError
from graflow_redis.channel import RedisChannel
from graflow_redis.errors import SecretKeyRequiredError
from graflow_redis.queue import DistributedTaskQueue
from graflow_redis.store import RedisStore
from graflow_redis.trust import is_loopback, is_loopback_host

REMOTE = "redis://192.0.2.10:6379/0"

BUILDERS: dict[str, Callable[..., Any]] = {
    "queue": lambda **kw: DistributedTaskQueue(redis_url=REMOTE, **kw),
    "channel": lambda **kw: RedisChannel("run-1", redis_url=REMOTE, **kw),
    "store": lambda **kw: RedisStore(redis.Redis.from_url(REMOTE), **kw),
}


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFLOW_SECRET_KEY", raising=False)
    monkeypatch.delenv("GRAFLOW_ALLOW_UNSIGNED", raising=False)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("192.0.2.10", False),
        ("10.0.0.5", False),
        ("2001:db8::1", False),
        ("redis.invalid", False),  # cannot be resolved: not known to be local
    ],
)
def test_what_counts_as_loopback(host: str, local: bool) -> None:
    assert is_loopback_host(host) is local


def test_a_unix_socket_is_on_this_machine() -> None:
    assert is_loopback(redis.Redis(unix_socket_path="/run/redis/redis.sock"))
    assert not is_loopback(redis.Redis.from_url(REMOTE))


@pytest.mark.parametrize("part", sorted(BUILDERS))
def test_a_part_reading_a_remote_redis_refuses_to_start_without_a_key(part: str) -> None:
    with pytest.raises(SecretKeyRequiredError) as refused:
        BUILDERS[part]()
    assert isinstance(refused.value, ConfigError)
    message = str(refused.value)
    assert "Redis at redis://192.0.2.10:6379/0 is not on loopback" in message
    assert "GRAFLOW_SECRET_KEY=<key>" in message and "comma-separated keys to rotate" in message
    assert "--allow-unsigned" in message and "{'allow_unsigned': True}" in message


@pytest.mark.parametrize("part", sorted(BUILDERS))
def test_a_key_or_allow_unsigned_lets_it_start(part: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert BUILDERS[part](secret_key="k").sealer is not None
    assert BUILDERS[part](allow_unsigned=True).sealer is None
    monkeypatch.setenv("GRAFLOW_ALLOW_UNSIGNED", "1")
    assert BUILDERS[part]().sealer is None
    monkeypatch.setenv("GRAFLOW_SECRET_KEY", "new,old")
    sealer = BUILDERS[part]().sealer
    assert sealer is not None and sealer.count == 2  # a key always wins: nothing goes unsigned needlessly


def test_a_run_on_a_remote_redis_without_a_key_fails_before_anything_runs() -> None:
    from graflow import task, workflow

    ran = []
    with workflow("remote") as wf:
        task("t")(lambda: ran.append(1))
        with pytest.raises(SecretKeyRequiredError):
            wf.execute(queue_backend="redis", channel_backend="redis", config={"redis_url": REMOTE})
    assert ran == []


def test_on_loopback_without_a_key_a_warning_is_logged_once_per_process(redis_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
        from graflow_redis.channel import RedisChannel
        from graflow_redis.queue import DistributedTaskQueue
        from graflow_redis.store import RedisStore
        for _ in range(2):
            queue = DistributedTaskQueue(redis_url={redis_url!r})
            RedisChannel("run-1", redis_url={redis_url!r})
            RedisStore(queue.client)
        """
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "redis_unsigned" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("graflow.redis ")
    assert "anyone who can write to this Redis can run code in this process" in warnings[0]


def test_the_worker_hands_its_sealer_to_a_tasks_channel_and_store_never_its_key(redis_url: str) -> None:
    from graflow.core.task import TaskWrapper
    from graflow.remote.envelope import TaskEnvelope

    queue = DistributedTaskQueue(redis_url=redis_url, key_prefix="trust-test", secret_key="the-key")
    spec = ("redis", {"redis_url": redis_url, "key_prefix": "trust-test", "shared_with_queue": True})
    envelope = TaskEnvelope(TaskWrapper("t", lambda: 1, register=False), "run-1", "wf", channel_backend=spec)
    localized = queue.consumer._localize(envelope.channel_backend)  # noqa: SLF001 - the part under test
    assert localized is not None
    assert "the-key" not in repr(localized) and "secret_key" not in localized[1]
    channel = RedisChannel.from_config("run-1", localized[1])
    assert channel.sealer is queue.sealer
