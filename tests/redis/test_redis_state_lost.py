"""A run whose Redis state vanished fails with ``RunStateLostError``; it never finishes on partial state.

Each test has a ``redis-server`` of its own (ports 7200-7299, no persistence) that it
restarts or flushes at a chosen moment: between two tasks, while a task runs on a
worker, or while a task waits in the stream. Tasks log each run to a file, since they
run in worker threads from pickled copies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler
from graflow.core.workflow import workflow
from graflow.exceptions import RunStateLostError
from graflow.queue import QueueBackend
from graflow_redis.keys import Keys
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until

PREFIX = "lost"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    (tmp_path / "redis").mkdir()
    with start_private_redis(tmp_path / "redis", ports=range(7200, 7300)) as started:
        yield started


@pytest.fixture
def options(server: PrivateRedis) -> dict[str, Any]:
    return {"redis_url": server.url, "key_prefix": PREFIX, "visibility_timeout": 2.0}


@pytest.fixture
def worker(options: dict[str, Any]) -> Iterator[ThreadWorker]:
    started = ThreadWorker(DistributedTaskQueue(**options), "lost-worker").start()
    yield started
    started.stop()


class RestartsRedis(TaskHandler):
    """Runs its task in the driver process, after restarting the test's server (emptied)."""

    def __init__(self, server: PrivateRedis) -> None:
        self.server = server

    def execute_task(self, task: Any, context: Any) -> Any:
        self.server.restart()
        return task.run()


def _logger(path: Path) -> Callable[[str], None]:
    target = str(path)

    def log(name: str) -> None:
        with open(target, "a") as out:
            out.write(name + "\n")

    return log


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _execute(wf: Any, options: dict[str, Any], engine: WorkflowEngine | None = None) -> tuple[Any, str]:
    """The run's error (or result) and its id."""
    context = ExecutionContext.create(
        wf.graph, queue_backend=QueueBackend.REDIS, channel_backend="redis", config=options
    )
    try:
        return (engine or WorkflowEngine()).execute(context), context.session_id
    except Exception as exc:
        return exc, context.session_id


def test_a_restart_without_persistence_between_two_tasks_fails_the_run_before_the_second_runs(
    server: PrivateRedis, options: dict[str, Any], worker: ThreadWorker, tmp_path: Path
) -> None:
    log = _logger(tmp_path / "runs")
    with workflow("between") as wf:

        @task
        def produce() -> int:
            log("produce")
            return 1

        @task(handler="restart_redis")
        def restart() -> None:
            pass

        @task(inject_context=True)
        def consume(ctx: Any) -> int:
            log("consume")
            return int(ctx.get_channel().get("limit", -1))

        produce >> restart >> consume

    engine = WorkflowEngine()
    engine.register_handler("restart_redis", RestartsRedis(server))
    error, run_id = _execute(wf, options, engine)

    assert isinstance(error, RunStateLostError), repr(error)
    assert f"run {run_id!r}" in str(error)
    assert "task 'consume' cannot go on" in str(error)
    assert "plan, completed steps, results and channel are missing" in str(error)
    assert _runs(tmp_path / "runs") == ["produce"]  # consume never ran on the empty server


def test_a_flush_while_a_task_runs_on_a_worker_fails_the_run_instead_of_recording_the_task(
    server: PrivateRedis, options: dict[str, Any], worker: ThreadWorker, tmp_path: Path
) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    started_s, go_s = str(started), str(go)
    log = _logger(tmp_path / "runs")
    with workflow("flushed") as wf:

        @task(inject_context=True)
        def slow(ctx: Any) -> str:
            import os
            import time

            ctx.get_channel().set("seen", "before")
            open(started_s, "w").close()
            while not os.path.exists(go_s):
                time.sleep(0.01)
            log("slow")
            return str(ctx.get_channel().get("seen", "a default"))

        @task
        def after() -> None:
            log("after")

        slow >> after

    outcome: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: outcome.update(run=_execute(wf, options)))
    driver.start()
    wait_until(started.exists, 20, "the slow task to start on the worker")
    redis.Redis.from_url(server.url).flushdb()
    go.touch()
    driver.join(30)
    assert not driver.is_alive(), "the run did not end after the flush"

    error, run_id = outcome["run"]
    assert isinstance(error, RunStateLostError), repr(error)
    assert f"run {run_id!r}" in str(error)
    assert "task 'slow' cannot go on" in str(error)
    assert _runs(tmp_path / "runs") == ["slow"]  # ran once; its result was not taken for a success
    assert not redis.Redis.from_url(server.url).exists(Keys(PREFIX).run(run_id).plan)  # not resumable
