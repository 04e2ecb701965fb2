"""The brief's distributed snippets (chapters 1, 7 and 8) run as written, on real workers.

The snippets use the default key prefix ("graflow") and no URL, so this module runs them on
a Redis database of its own (REDIS_URL points there) and empties it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import workflow
from graflow.queue import QueueBackend
from tests.e2e.e2e_support import REDIS_HOST, REDIS_PORT
from tests.support.waiting import wait_until

#: The database the snippets' default-prefix keys live in during this module.
SEED_DB = 9


@pytest.fixture
def seed_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{SEED_DB}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=SEED_DB)
    client.flushdb()
    monkeypatch.setenv("REDIS_URL", url)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def seed_workers(seed_redis: redis.Redis, tmp_path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The brief's fleet: ``python -m graflow.worker.main --worker-id worker-N --max-concurrent-tasks N``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["REDIS_URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/{SEED_DB}"
    processes = []
    for worker_id, slots in (("worker-1", 4), ("worker-2", 8)):
        with open(tmp_path / f"{worker_id}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "graflow.worker.main",
                        "--worker-id",
                        worker_id,
                        "--max-concurrent-tasks",
                        str(slots),
                    ],
                    cwd=tmp_path,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    from graflow_redis.queue import DistributedTaskQueue

    queue = DistributedTaskQueue(redis_client=seed_redis)
    wait_until(
        lambda: {w["worker_id"] for w in queue.workers()} == {"worker-1", "worker-2"},
        30,
        "the seed's workers",
    )
    yield processes
    for process in processes:
        process.kill()
        process.wait(10)


def test_backend_switch_runs_the_same_workflow_on_the_fleet(seed_redis, seed_workers) -> None:
    with workflow("etl") as wf:

        @task(inject_context=True)
        def extract(context) -> list[int]:
            context.get_channel().set("rows", 3)
            return [1, 2, 3]

        @task(inject_context=True)
        def transform(context) -> list[int]:
            return [x * 2 for x in context.get_result("extract")]

        @task(inject_context=True)
        def load(context) -> str:
            return f"{context.get_channel().get('rows')} rows, sum {sum(context.get_result('transform'))}"

        extract >> transform >> load
    graph = wf.graph
    redis_client = seed_redis

    # 開発環境: ローカル実行（インフラ不要）
    context = ExecutionContext.create(graph, queue_backend=QueueBackend.MEMORY, channel_backend="memory")
    local = WorkflowEngine().execute(context)

    # 本番環境: 分散実行（同じコード！）
    context = ExecutionContext.create(
        graph,
        queue_backend=QueueBackend.REDIS,
        channel_backend="redis",
        config={"redis_client": redis_client},
    )
    distributed = WorkflowEngine().execute(context)

    assert local == distributed == "3 rows, sum 12"
    # The fleet's counters (published with each heartbeat) show the three tasks ran there.
    wait_until(
        lambda: sum(int(w["tasks_processed"]) for w in context.queue.workers()) == 3,
        10,
        "the workers' heartbeats to count 3 tasks",
    )


def test_coordination_backend_redis_sends_group_members_to_the_workers(seed_workers) -> None:
    with workflow("parallel") as wf:

        @task
        def task_a() -> str:
            return f"a on {os.getpid()}"

        @task
        def task_b() -> str:
            return f"b on {os.getpid()}"

        @task
        def task_c() -> str:
            return f"c on {os.getpid()}"

        parallel = (task_a | task_b | task_c).with_execution(
            backend=CoordinationBackend.REDIS  # 分散ワーカー
        )
        _, context = wf.execute(ret_context=True)
    worker_pids = {str(p.pid) for p in seed_workers}
    results = [context.get_result(t) for t in ("task_a", "task_b", "task_c")]
    assert [r.split()[0] for r in results] == ["a", "b", "c"]
    assert {r.split()[-1] for r in results} <= worker_pids
    assert parallel.backend == "redis"


def test_environment_based_backend_choice(seed_workers, monkeypatch) -> None:
    monkeypatch.setenv("ENV", "production")
    with workflow("env-switch") as wf:

        @task
        def where() -> int:
            return os.getpid()

    graph = wf.graph

    backend = QueueBackend.REDIS if os.getenv("ENV") == "production" else QueueBackend.MEMORY

    context = ExecutionContext.create(graph, queue_backend=backend)
    pid = WorkflowEngine().execute(context)
    assert str(pid) in {str(p.pid) for p in seed_workers}


def test_distributed_channel_shares_state_between_tasks_on_workers(seed_redis, seed_workers) -> None:
    with workflow("channels") as wf:
        # プロデューサータスク
        @task(inject_context=True)
        def producer(context):
            channel = context.get_channel()
            channel.set("config", {"batch_size": 100})
            channel.set("metrics", {"processed": 0})

        # コンシューマータスク（疎結合）
        @task(inject_context=True)
        def consumer(context):
            channel = context.get_channel()
            config = channel.get("config")
            metrics = channel.get("metrics", default={})
            return config["batch_size"], metrics

        producer >> consumer
    graph = wf.graph
    context = ExecutionContext.create(
        graph,
        queue_backend=QueueBackend.REDIS,
        channel_backend="redis",  # ワーカーがRedis経由でステート共有
    )
    assert WorkflowEngine().execute(context) == (100, {"processed": 0})
    assert sorted(context.channel.keys()) == ["config", "metrics"]


def test_task_worker_in_python_with_the_seeds_import_paths(seed_redis) -> None:
    from graflow.queue.distributed import DistributedTaskQueue
    from graflow.worker.worker import TaskWorker

    worker = TaskWorker(
        queue=DistributedTaskQueue(redis_client=seed_redis, key_prefix="graflow"),
        worker_id="in-process",
        max_concurrent_tasks=2,
        graceful_shutdown_timeout=5.0,
    )
    worker.start()
    try:
        with workflow("metrics") as wf:

            @task
            def ok() -> int:
                return 1

            @task
            def broken() -> None:
                raise RuntimeError("expected")

            ok >> broken
        context = ExecutionContext.create(
            wf.graph, queue_backend=QueueBackend.REDIS, config={"redis_client": seed_redis}
        )
        with pytest.raises(RuntimeError, match="expected"):
            WorkflowEngine().execute(context)
    finally:
        assert worker.stop() is True
    assert worker.tasks_processed == 2  # 実行タスク総数
    assert worker.tasks_succeeded == 1  # 成功完了数
    assert worker.tasks_failed == 1  # 失敗タスク数
    assert worker.total_execution_time > 0  # 累積実行時間
