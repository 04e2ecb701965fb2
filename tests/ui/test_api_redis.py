"""The dashboard over a Redis store (SPEC 20): fleet runs, live workers, queue depth, dead letters.

Against the real Redis at 127.0.0.1:6379 (missing: skipped, or failed with ``CI=true``), under
a key prefix of the test's own, with a real :class:`~graflow_worker.TaskWorker` in the process.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.retry import RetryPolicy
from graflow.core.workflow import workflow
from graflow_redis.queue import DistributedTaskQueue
from graflow_ui.app import create_app
from graflow_ui.settings import UISettings
from graflow_worker import TaskWorker
from tests.support.redis_keys import delete_prefix
from tests.support.services import require_redis
from tests.support.waiting import wait_until

_POST = {"X-Graflow-Request": "1"}


@pytest.fixture
def fleet_config() -> Iterator[dict[str, Any]]:
    url = require_redis(
        os.environ.get("REDIS_TEST_HOST", "127.0.0.1"), int(os.environ.get("REDIS_TEST_PORT", "6379"))
    )
    prefix = f"test-ui-{uuid.uuid4().hex[:10]}"
    yield {"redis_url": url, "key_prefix": prefix, "worker_wait_timeout": 30.0}
    client = redis.Redis.from_url(url)
    delete_prefix(client, prefix)
    client.close()


@pytest.fixture
def worker(fleet_config: dict[str, Any]) -> Iterator[TaskWorker]:
    queue = DistributedTaskQueue(redis_url=fleet_config["redis_url"], key_prefix=fleet_config["key_prefix"])
    started = TaskWorker(queue, "ui-worker-1", max_concurrent_tasks=2, heartbeat_interval=0.2)
    started.start()
    yield started
    started.stop(timeout=10)
    queue.close()


@pytest.fixture
def client(fleet_config: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    settings = UISettings(
        store_config={k: fleet_config[k] for k in ("redis_url", "key_prefix")},
        log_dir=tmp_path / "ui-logs",
        depth_interval=0.1,
    )
    with TestClient(
        create_app(settings), base_url="http://127.0.0.1:8265", raise_server_exceptions=False
    ) as opened:
        yield opened


def _fleet_run(config: dict[str, Any]) -> str:
    """A run on the fleet whose ``flaky`` task fails once on the worker, then succeeds."""
    with workflow("fleet_job") as wf:

        @task
        def fetch() -> int:
            return 41

        @task(
            inject_context=True, retry_policy=RetryPolicy(max_retries=1, initial_interval=0.01, jitter=False)
        )
        def flaky(ctx: Any) -> int:
            if ctx.retry_count == 0:
                raise TimeoutError("the partner API is slow")
            return ctx.get_result("fetch") + 1

        fetch >> flaky

    context = ExecutionContext.create(wf.graph, queue_backend="redis", channel_backend="redis", config=config)
    WorkflowEngine().execute(context)
    return context.session_id


def test_a_fleet_run_shows_its_tasks_the_workers_that_ran_them_and_the_retry(
    fleet_config: dict[str, Any], worker: TaskWorker, client: TestClient
) -> None:
    run_id = _fleet_run(fleet_config)

    page = client.get("/api/runs").json()
    detail = client.get(f"/api/runs/{run_id}").json()

    assert [r["run_id"] for r in page["runs"]] == [run_id] and page["total"] == 1
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    assert {name: t["state"] for name, t in tasks.items()} == {"fetch": "done", "flaky": "done"}
    assert tasks["flaky"]["result"]["text"] == "42"
    assert tasks["flaky"]["worker"] not in (None, "driver")
    (failure,) = detail["failures"]
    assert failure["error_type"] == "TimeoutError" and "the partner API is slow" in failure["traceback"]
    assert [(b["task_id"], b["outcome"]) for b in detail["timeline"]][-2:] == [
        ("flaky", "failed"),
        ("flaky", "succeeded"),
    ]


def test_the_fleet_shows_live_workers_and_queue_depth_over_time(
    fleet_config: dict[str, Any], worker: TaskWorker, client: TestClient
) -> None:
    _fleet_run(fleet_config)

    def counted() -> list[dict[str, Any]]:
        shown = client.get("/api/workers").json()
        return shown if shown and shown[0]["tasks_processed"] >= 3 else []

    (shown,) = wait_until(counted, 10, "a heartbeat counting the run's 3 attempts")
    assert shown["worker_id"] == "ui-worker-1" and shown["max_concurrent_tasks"] == 2
    assert (shown["tasks_succeeded"], shown["tasks_failed"], shown["state"]) == (2, 1, "running")
    queue = wait_until(
        lambda: (q := client.get("/api/queues").json()[0])["history"][2:] and q, 10, "depth samples"
    )
    assert (
        queue["name"] == fleet_config["key_prefix"]
        and queue["stream"] == f"{{{fleet_config['key_prefix']}}}:q:QUEUE:p0-9"
    )
    assert queue["queues"]["default"] == {"waiting": 0, "running": 0}
    assert queue["depth"] == 0 and queue["dead_letters"] == 0
    assert all(b["at"] > a["at"] for a, b in zip(queue["history"], queue["history"][1:], strict=False))


def test_a_dead_letter_shows_reason_worker_and_time_and_can_be_requeued_or_discarded(
    fleet_config: dict[str, Any], worker: TaskWorker, client: TestClient
) -> None:
    producer = DistributedTaskQueue(
        redis_url=fleet_config["redis_url"], key_prefix=fleet_config["key_prefix"]
    )
    try:
        before = time.time()
        for _ in range(2):
            producer.executor.submit_payload("import_rows", b"not a pickle")
        page = wait_until(
            lambda: (p := client.get("/api/dead-letters").json())["total"] == 2 and p, 20, "2 dead letters"
        )
    finally:
        producer.close()
    letter = page["letters"][0]
    assert letter["task"] == "import_rows" and "cannot be unpickled" in letter["reason"]
    assert letter["worker"] == "ui-worker-1" and letter["at"] >= before

    requeued = client.post(f"/api/dead-letters/{letter['id']}/requeue", headers=_POST)
    discarded = client.post(f"/api/dead-letters/{page['letters'][1]['id']}/discard", headers=_POST)

    assert requeued.status_code == 200 and "back on the queue" in requeued.json()["message"]
    assert discarded.status_code == 200
    # The requeued entry is still no pickle: the worker dead-letters it again, with its reason.
    again = wait_until(
        lambda: (p := client.get("/api/dead-letters").json())["total"] == 1 and p, 20, "the letter back"
    )
    assert again["letters"][0]["id"] != letter["id"]
    assert client.post(f"/api/dead-letters/{letter['id']}/discard", headers=_POST).status_code == 404
