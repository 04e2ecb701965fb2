"""A run's cost per task does not grow with its size (issue 14): measured in bytes, not seconds.

A fan-out group of closures over their index runs on an in-test worker against a private
Redis, so the server's own counters (``total_net_input_bytes``, ``total_net_output_bytes``)
see only this run: driver and worker traffic together. Ten times as many tasks must cost no
more bytes per task: nothing sent per task may carry the run's earlier tasks or results.
"""

from __future__ import annotations

from typing import Any

import redis

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.group import ParallelGroup
from graflow.core.workflow import workflow
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker
from tests.support.redis_server import PrivateRedis


def traffic(client: redis.Redis) -> int:
    stats: Any = client.info("stats")
    return int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


def bytes_per_task(url: str, size: int) -> float:
    prefix = f"scale-{size}"
    worker = ThreadWorker(DistributedTaskQueue(redis_url=url, key_prefix=prefix), "w1", 4).start()
    client = redis.Redis.from_url(url)
    try:
        with workflow(f"fan-out-{size}") as wf:
            members = [task(f"n{i}")(lambda i=i: i) for i in range(size)]
            ParallelGroup(members, name="all").with_execution(backend=CoordinationBackend.REDIS)
        context = ExecutionContext.create(
            wf.graph, config={"redis_url": url, "key_prefix": prefix}, max_steps=size * 2 + 10
        )
        before = traffic(client)
        WorkflowEngine().execute(context)
        sent = traffic(client) - before
        assert context.get_result("all") == {f"n{i}": i for i in range(size)}
        return sent / size
    finally:
        worker.stop()
        worker.queue.close()
        client.close()


def test_ten_times_the_tasks_cost_no_more_bytes_per_task(private_redis: PrivateRedis) -> None:
    small = bytes_per_task(private_redis.url, 40)
    large = bytes_per_task(private_redis.url, 400)

    assert large <= small * 1.1, f"{small:.0f} bytes per task at 40 tasks, {large:.0f} at 400"
    assert large < 8_000  # an envelope, its outcome and the bookkeeping around them
