"""Redis refuses (read-only replica, ACL, out of memory): the run fails at once, saying what to fix.

Each test starts its own ``redis-server`` (ports 7200-7299) in the state it is about; no
worker is needed, since the refusal comes before any task could run, and must come at once
rather than after a retry budget or a "no worker alive" timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow_redis.errors import RedisRefusedError
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    (tmp_path / "primary").mkdir()
    with start_private_redis(tmp_path / "primary", ports=range(7200, 7300)) as started:
        yield started


def _run_one_task(config: dict[str, Any]) -> tuple[RedisRefusedError, float]:
    with workflow("refused") as wf:
        task("job")(lambda: 1)
    started = time.monotonic()
    with pytest.raises(RedisRefusedError) as caught:
        wf.execute(
            queue_backend="redis", channel_backend="redis", config={"worker_wait_timeout": 30, **config}
        )
    return caught.value, time.monotonic() - started


def test_a_run_on_a_read_only_replica_fails_at_once_naming_the_primary_to_use(
    server: PrivateRedis, tmp_path: Path
) -> None:
    (tmp_path / "replica").mkdir()
    with start_private_redis(tmp_path / "replica", ports=range(7200, 7300)) as replica:
        client = redis.Redis.from_url(replica.url)
        client.replicaof("127.0.0.1", server.port)
        wait_until(
            lambda: client.info("replication")["master_link_status"] == "up", 10, "the replica to sync"
        )
        error, took = _run_one_task({"redis_url": replica.url, "key_prefix": "refused"})

    assert error.condition == "READONLY"
    assert f"Redis at redis://127.0.0.1:{replica.port}/0 is a read-only replica" in str(error)
    assert "point redis_url (--redis-url, REDIS_URL) at the primary" in str(error)
    assert took < 5.0


def test_a_run_whose_redis_user_lacks_a_permission_fails_at_once_naming_the_acl_to_grant(
    server: PrivateRedis,
) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("graflow", enabled=True, passwords=["+pw"], keys=["other:*"], commands=["+@all"])
    url = f"redis://graflow:pw@127.0.0.1:{server.port}/0"
    error, took = _run_one_task({"redis_url": url, "key_prefix": "refused"})

    assert error.condition == "NOPERM"
    assert "denies this user a command or key it needs (ACL)" in str(error)
    assert "ACL SETUSER <user> ~{refused* " in str(error)
    assert took < 5.0


def test_a_run_on_a_redis_out_of_memory_fails_at_once_naming_maxmemory(server: PrivateRedis) -> None:
    redis.Redis.from_url(server.url).config_set("maxmemory", 1)
    error, took = _run_one_task({"redis_url": server.url, "key_prefix": "refused"})

    assert error.condition == "OOM"
    assert "is out of memory" in str(error) and "raise maxmemory" in str(error)
    assert took < 5.0
