"""The driver's side of the fleet: the executor contract, and the wait for outcomes (blocking reads,
a warning when nobody works, a timeout, a clean close)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from graflow.channels.base import Channel
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import GraflowError, GraflowRuntimeError
from graflow.plugins import get_plugin_manager
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.driver import FleetExecutor
from graflow_redis.errors import NoWorkerAvailableError, RedisUnavailableError
from graflow_redis.queue import DistributedTaskQueue
from tests.core.remote.contract import ExecutorContract
from tests.redis.thread_worker import ThreadWorker
from tests.support.waiting import wait_until

MakeQueue = Callable[..., DistributedTaskQueue]


class TestFleetExecutor(ExecutorContract):
    """The fleet as a RemoteExecutor: envelopes go through the real Redis to an in-test worker."""

    @pytest.fixture
    def executor(self, class_fleet: dict[str, Any]) -> Iterator[FleetExecutor]:
        queue = DistributedTaskQueue.from_config(class_fleet)
        yield queue.executor
        queue.close()

    @pytest.fixture
    def shared_channel(self, class_fleet: dict[str, Any]) -> Iterator[Channel]:
        channel = get_plugin_manager().resolve("graflow_channel_backends", "redis")("shared-run", class_fleet)
        yield channel
        channel.clear()


def envelope(func: Callable[..., Any], task_id: str = "job") -> TaskEnvelope:
    return TaskEnvelope(TaskWrapper(task_id, func, register=False), session_id="run-1", workflow_name="tests")


class CountingRedis(redis.Redis):
    """A client that counts the commands it sends, by name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.calls[str(args[0]).upper()] += 1
        return super().execute_command(*args, **options)


def test_with_no_worker_alive_the_driver_warns_at_once_and_keeps_waiting(make_queue: MakeQueue) -> None:
    with capture_logs() as logs:
        queue = make_queue(worker_wait_timeout=60)
        future = queue.submit(envelope(lambda: 1))
        wait_until(
            lambda: any(e["event"] == "no_worker_alive" for e in logs), 5, "a warning that no worker is alive"
        )
    warning = next(e for e in logs if e["event"] == "no_worker_alive")
    assert warning["log_level"] == "warning"
    assert warning["key_prefix"] == queue.key_prefix
    assert warning["fails_after"] == 60
    assert (
        f"graflow-worker --redis-url redis://127.0.0.1:6379/0 --key-prefix {queue.key_prefix}"
        in warning["hint"]
    )
    assert not future.done()


def test_with_no_worker_alive_a_run_fails_after_worker_wait_timeout_saying_what_to_start(
    config: dict[str, Any],
) -> None:
    with workflow("nobody_home") as wf:

        @task
        def extract() -> int:
            return 1

        with pytest.raises(NoWorkerAvailableError) as info:
            wf.execute(queue_backend="redis", config={**config, "worker_wait_timeout": 1.5})

    error = info.value
    assert isinstance(error, GraflowError)
    assert error.graflow_task_id == "extract"  # type: ignore[attr-defined]
    message = str(error)
    assert "task 'extract' was not run" in message
    assert f"no graflow-worker is alive for key prefix {config['key_prefix']!r}" in message
    assert (
        f"`graflow-worker --redis-url redis://127.0.0.1:6379/0 --key-prefix {config['key_prefix']}`"
        in message
    )
    assert "worker_wait_timeout" in message
    assert error.waited >= 1.5


def test_a_task_that_timed_out_waiting_is_withdrawn_so_no_late_worker_runs_it(make_queue: MakeQueue) -> None:
    queue = make_queue(worker_wait_timeout=1.0)
    with pytest.raises(NoWorkerAvailableError):
        queue.executor.execute(envelope(lambda: 1))
    assert queue.depth() == 0
    late = make_queue()
    assert late.fetch("late-worker", count=1, block=0.2) == []


def test_a_worker_that_arrives_while_the_driver_waits_runs_the_task(
    make_queue: MakeQueue, start_worker: Callable[..., ThreadWorker]
) -> None:
    queue = make_queue(worker_wait_timeout=30)
    future = queue.submit(envelope(lambda: "finally"))
    assert future.done() is False
    start_worker()
    assert future.result(timeout=10).result == "finally"


def test_the_driver_waits_on_blocking_reads_not_by_polling(
    redis_url: str, key_prefix: str, start_worker: Callable[..., ThreadWorker]
) -> None:
    client = CountingRedis.from_url(redis_url)
    queue = DistributedTaskQueue(client, key_prefix=key_prefix, worker_wait_timeout=30)
    try:
        future = queue.submit(envelope(lambda: 1))
        time.sleep(1.5)  # a quiet wait: what the driver sends meanwhile is the subject
        start_worker()
        assert future.result(timeout=10).result == 1
    finally:
        queue.close()
    assert client.calls["BLPOP"] >= 1
    # One blocking read per second plus a fleet check, not a loop of GET/LLEN/LPOP calls.
    assert sum(client.calls.values()) < 25, client.calls


def test_closing_the_queue_fails_waiting_tasks_and_withdraws_them(make_queue: MakeQueue) -> None:
    queue = make_queue()
    future = queue.submit(envelope(lambda: 1, "pending_task"))
    queue.close()
    error = future.exception(timeout=5)
    assert isinstance(error, GraflowRuntimeError)
    assert "'pending_task' was still waiting" in str(error)
    assert queue.depth() == 0
    assert queue.client.exists(f"{{{queue.key_prefix}}}:reply:") == 0


def test_an_unreachable_redis_fails_a_run_quickly_naming_the_address() -> None:
    with workflow("no_redis") as wf:

        @task
        def extract() -> int:
            return 1

        with pytest.raises(RedisUnavailableError) as info:
            wf.execute(queue_backend="redis", config={"redis_url": "redis://127.0.0.1:1/0"})
    message = str(info.value)
    assert "starting run" in message
    assert "redis://127.0.0.1:1/0" in message
    assert "Check that it is running" in message
