"""What the Redis store keeps for people to read (SPEC 20): failed attempts of fleet tasks, pages of runs."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.retry import RetryPolicy
from graflow.core.workflow import workflow
from graflow.state.records import RunStatus
from graflow_redis.store import RedisStore
from tests.core.state.test_local_store import _plan
from tests.redis.thread_worker import ThreadWorker


def test_a_task_that_failed_on_a_worker_keeps_each_attempt_with_the_workers_traceback(
    config: dict[str, Any], thread_worker: ThreadWorker, redis_client: redis.Redis, key_prefix: str
) -> None:
    with workflow("fleet_flaky") as wf:

        @task(retry_policy=RetryPolicy(max_retries=1, initial_interval=0.01, jitter=False))
        def always_fails() -> None:
            raise ValueError("the far side says no")

    context = ExecutionContext.create(wf.graph, queue_backend="redis", channel_backend="redis", config=config)
    with pytest.raises(Exception, match="the far side says no"):
        WorkflowEngine().execute(context)
    store = RedisStore(redis_client, key_prefix)

    failures = store.failures(context.session_id)

    assert [(f.task_id, f.attempt, f.final) for f in failures] == [
        ("always_fails", 1, False),
        ("always_fails", 2, True),
    ]
    assert failures[0].message == "the far side says no"
    # The worker's frames (code travels by value, so there is no source line to show).
    assert "in always_fails" in failures[0].traceback
    assert failures[0].traceback.rstrip().endswith("ValueError: the far side says no")
    assert store.run(context.session_id).status is RunStatus.FAILED


def test_a_page_of_runs_comes_from_the_index_with_the_count_of_every_run(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RedisStore(redis_client, key_prefix)
    journals = []
    for number in range(5):
        journals.append(store.start_run(_plan(f"run-{number}", "etl" if number % 2 else "report")))
        time.sleep(0.002)
    journals[3].finish(RunStatus.FAILED, "task 'a': ValueError: no")
    try:
        page, total = store.runs_page(offset=1, limit=2)
        assert ([r.run_id for r in page], total) == (["run-3", "run-2"], 5)
        page, total = store.runs_page(workflow="etl")
        assert ([r.run_id for r in page], total) == (["run-3", "run-1"], 2)
        page, total = store.runs_page(RunStatus.FAILED)
        assert ([r.run_id for r in page], total) == (["run-3"], 1)
    finally:
        for journal in journals:
            journal.close()
