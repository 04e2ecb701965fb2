"""A submission whose stream entry vanished is noticed and sent again: the driver never waits forever.

Each test has a ``redis-server`` of its own (ports 7200-7299) with a 2 s visibility
timeout. The entry is removed while no worker runs (``XDEL``, ``FLUSHDB``); then a worker
starts, and the run must end within the visibility timeout plus a few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow.exceptions import RunStateLostError
from graflow_redis.keys import Keys
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until

PREFIX = "lost-entries"
VISIBILITY = 2.0
#: What "a few seconds" after the visibility timeout means here.
SLACK = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with start_private_redis(tmp_path, ports=range(7200, 7300)) as started:
        yield started


@pytest.fixture
def options(server: PrivateRedis) -> dict[str, Any]:
    return {"redis_url": server.url, "key_prefix": PREFIX, "visibility_timeout": VISIBILITY}


def _drive(options: dict[str, Any], log_path: Path) -> tuple[threading.Thread, dict[str, Any]]:
    """Start a one-task run (``job`` logs each run of it) on a background thread."""
    log = str(log_path)
    outcome: dict[str, Any] = {}
    with workflow("lost_entry") as wf:

        @task
        def job() -> str:
            with open(log, "a") as out:
                out.write("job\n")
            return "made it"

    def drive() -> None:
        try:
            outcome["result"] = wf.execute(queue_backend="redis", channel_backend="redis", config=options)
        except Exception as exc:
            outcome["error"] = exc

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    return driver, outcome


def _queued_entry(client: redis.Redis) -> bytes:
    entries = wait_until(lambda: client.xrange(Keys(PREFIX).tasks), 10, "the task's entry")
    return entries[0][0]


def test_an_entry_deleted_from_the_stream_is_submitted_again_and_runs_once(
    server: PrivateRedis, options: dict[str, Any], tmp_path: Path
) -> None:
    client = redis.Redis.from_url(server.url)
    with capture_logs() as logs:
        driver, outcome = _drive(options, tmp_path / "runs")
        assert client.xdel(Keys(PREFIX).tasks, _queued_entry(client)) == 1
        worker = ThreadWorker(DistributedTaskQueue(**options), "late-worker").start()
        started = time.monotonic()
        try:
            driver.join(VISIBILITY + SLACK)
            took = time.monotonic() - started
        finally:
            worker.stop()

    assert not driver.is_alive(), "the driver still waits for an entry that no longer exists"
    assert outcome == {"result": "made it"}
    assert took < VISIBILITY + SLACK
    assert (tmp_path / "runs").read_text().split() == ["job"]
    lost = [e for e in logs if e["event"] == "entries_lost"]
    assert [e["tasks"] for e in lost] == [["job"]]


def test_a_flush_while_a_task_is_queued_fails_the_run_with_run_state_lost_error(
    server: PrivateRedis, options: dict[str, Any], tmp_path: Path
) -> None:
    client = redis.Redis.from_url(server.url)
    driver, outcome = _drive(options, tmp_path / "runs")
    _queued_entry(client)
    client.flushdb()
    worker = ThreadWorker(DistributedTaskQueue(**options), "late-worker").start()
    try:
        driver.join(VISIBILITY + SLACK)
    finally:
        worker.stop()

    assert not driver.is_alive(), "the driver still waits after the flush"
    error = outcome["error"]
    assert isinstance(error, RunStateLostError), repr(error)
    assert "task 'job' cannot go on" in str(error)
    assert not (tmp_path / "runs").exists()  # the task never ran on the emptied server
