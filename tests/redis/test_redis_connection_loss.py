"""Redis goes away and comes back: drivers, workers and channels carry on.

Each test restarts its own ``redis-server`` (no persistence, so a restart also loses
every key: the harshest case). Task gates are files, since tasks run in worker threads
from pickled copies and share nothing else with the test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import RunStateLostError
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.channel import RedisChannel
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until


@pytest.fixture
def queue_options(private_redis: PrivateRedis) -> dict[str, Any]:
    return {"redis_url": private_redis.url, "key_prefix": "restart", "visibility_timeout": 2.0}


@pytest.fixture
def worker(queue_options: dict[str, Any]) -> Any:
    worker = ThreadWorker(DistributedTaskQueue(**queue_options), "restart-worker").start()
    yield worker
    worker.stop()


def _restart_while_slow_runs(
    wf_name: str, server: PrivateRedis, options: dict[str, Any], tmp_path: Path
) -> dict[str, Any]:
    """Run extract >> slow >> load on ``server``; restart it while ``slow`` runs; what the run gave."""
    started, go, runs = tmp_path / "started", tmp_path / "go", tmp_path / "runs"
    started_s, go_s, runs_s = str(started), str(go), str(runs)
    outcome: dict[str, Any] = {}

    with workflow(wf_name) as wf:

        @task
        def extract() -> int:
            return 20

        @task(inject_context=True)
        def slow(ctx: Any) -> int:
            import os
            import time

            with open(runs_s, "a") as log:
                log.write("run\n")
            open(started_s, "w").close()
            while not os.path.exists(go_s):
                time.sleep(0.01)
            return ctx.get_result("extract") + 1

        @task(inject_context=True)
        def load(ctx: Any) -> int:
            return ctx.get_result("slow") * 2

        extract >> slow >> load

        def drive() -> None:
            try:
                outcome["result"] = wf.execute(queue_backend="redis", channel_backend="redis", config=options)
            except BaseException as exc:
                outcome["error"] = exc

        driver = threading.Thread(target=drive)
        driver.start()
        wait_until(started.exists, 20, "the slow task to start on the worker")
        server.restart()
        go.touch()
        driver.join(60)
    assert not driver.is_alive(), "the run did not end after the restart"
    outcome["runs"] = runs.read_text().count("run")
    return outcome


def test_a_run_whose_redis_restarted_empty_fails_loudly_instead_of_going_on_with_lost_state(
    private_redis: PrivateRedis, queue_options: dict[str, Any], worker: ThreadWorker, tmp_path: Path
) -> None:
    outcome = _restart_while_slow_runs("restart", private_redis, queue_options, tmp_path)

    assert "result" not in outcome, "the run must not succeed on state it no longer has"
    error = outcome["error"]
    assert isinstance(error, RunStateLostError), repr(error)
    assert "appendonly" in str(error)


def test_a_run_completes_when_redis_with_an_append_only_file_restarts_while_a_task_runs(
    tmp_path: Path,
) -> None:
    (tmp_path / "aof").mkdir()
    with start_private_redis(tmp_path / "aof", ports=range(6381, 6392), append_only=True) as server:
        options = {"redis_url": server.url, "key_prefix": "restart-aof", "visibility_timeout": 2.0}
        worker = ThreadWorker(DistributedTaskQueue(**options), "aof-worker").start()
        try:
            outcome = _restart_while_slow_runs("restart_aof", server, options, tmp_path)
        finally:
            worker.stop()

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] == 42
    assert 1 <= outcome["runs"] <= 2  # at least once; a second run only if the entry came back unfinished


def test_a_channel_keeps_working_across_a_restart(private_redis: PrivateRedis) -> None:
    channel = RedisChannel("run", redis_url=private_redis.url, key_prefix="restart")
    channel.set("before", 1)
    private_redis.restart()
    channel.set("after", 2)
    assert channel.get("after") == 2
    assert channel.atomic_add("count", 3) == 3
    with channel.lock("k", timeout=5):
        channel.append("log", "locked")
    assert channel.get("log") == ["locked"]


def test_a_worker_keeps_fetching_across_a_restart(
    private_redis: PrivateRedis, queue_options: dict[str, Any]
) -> None:
    worker = DistributedTaskQueue(**queue_options)
    driver = DistributedTaskQueue(**queue_options)
    try:
        assert worker.fetch("w1", count=1, block=0.05) == []
        private_redis.restart()
        assert worker.fetch("w1", count=1, block=0.05) == []  # the group is recreated, no error
        driver.submit(TaskEnvelope(TaskWrapper("job", lambda: 1, register=False), "run", "wf"))
        deliveries = wait_until(lambda: worker.fetch("w1", count=1, block=0.1), 10, "the new entry")
        assert deliveries[0].envelope.task_id == "job"
    finally:
        driver.close()


def test_a_submission_while_redis_is_down_goes_through_once_it_is_back(
    private_redis: PrivateRedis, queue_options: dict[str, Any], worker: ThreadWorker
) -> None:
    driver = DistributedTaskQueue(**queue_options)
    try:
        first = driver.submit(TaskEnvelope(TaskWrapper("first", lambda: 1, register=False), "run", "wf"))
        assert first.result(timeout=10).result == 1

        private_redis.kill()
        restarter = threading.Timer(1.0, private_redis.start)
        restarter.start()
        second = driver.submit(TaskEnvelope(TaskWrapper("second", lambda: 2, register=False), "run", "wf"))
        restarter.join()
        assert second.result(timeout=30).result == 2
    finally:
        driver.close()


def test_a_task_lost_in_a_restart_before_any_worker_took_it_is_submitted_again(
    private_redis: PrivateRedis, queue_options: dict[str, Any]
) -> None:
    driver = DistributedTaskQueue(**queue_options, worker_wait_timeout=60)
    try:
        future = driver.submit(
            TaskEnvelope(TaskWrapper("job", lambda: "made it", register=False), "run", "wf")
        )
        wait_until(lambda: driver.executor._server_id is not None, 5, "the driver to learn the server")
        with capture_logs() as logs:
            private_redis.restart()  # the entry is gone with everything else
            wait_until(
                lambda: any(e["event"] == "redis_restarted" for e in logs),
                10,
                "the driver to notice the restart",
            )
        late = ThreadWorker(DistributedTaskQueue(**queue_options), "late-worker").start()
        try:
            assert future.result(timeout=20).result == "made it"
        finally:
            late.stop()
    finally:
        driver.close()
