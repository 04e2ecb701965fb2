"""``graflow-worker --pool processes`` with real worker processes and the real Redis.

Tasks run in the worker's child processes: a child that dies mid-task loses nothing, a
signed run is verified and signed in the children, and SIGTERM drains as with threads.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import workflow
from graflow.queue import QueueBackend
from tests.e2e.conftest import Fleet
from tests.support.processes import pid_alive
from tests.support.waiting import wait_until

KEY = "pool-secret"


def config_for(fleet: Fleet, **extra: Any) -> dict[str, Any]:
    return {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "visibility_timeout": 2.0, **extra}


def squares(count: int, killer: int | None = None, marker: Path | None = None) -> ExecutionContext:
    """A group of ``count`` tasks ``sq{n}`` returning ``(n * n, pid)``; then ``total`` sums the squares.

    Task ``sq{killer}`` SIGKILLs its own process the first time it runs (``marker`` says it did).
    """

    def square(n: int) -> Any:
        @task(f"sq{n}", inject_context=True)
        def run(ctx: TaskExecutionContext) -> tuple[int, int]:
            ctx.get_channel().append("started", (n, os.getpid()))
            if n == killer and marker is not None and not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return n * n, os.getpid()

        return run

    @task("total", inject_context=True)
    def total(ctx: TaskExecutionContext) -> int:
        return sum(ctx.get_result(f"sq{n}")[0] for n in range(count))

    with workflow("squares") as wf:
        group = square(0)
        for n in range(1, count):
            group = group | square(n)
        group >> total  # type: ignore[operator]
    return wf.graph  # type: ignore[return-value]


def run_on(fleet: Fleet, graph: Any, timeout: float = 120, **extra: Any) -> ExecutionContext:
    context = ExecutionContext.create(
        graph, queue_backend=QueueBackend.REDIS, channel_backend="redis", config=config_for(fleet, **extra)
    )
    WorkflowEngine().execute(context)
    return context


def test_a_task_that_sigkills_its_child_on_first_delivery_runs_again_and_every_result_is_right(
    fleet: Fleet, tmp_path: Path
) -> None:
    worker = fleet.start("pool", "--pool", "processes", "--concurrency", "2")
    marker = tmp_path / "killed"
    context = run_on(fleet, squares(6, killer=3, marker=marker))

    assert context.get_result("total") == sum(n * n for n in range(6))
    results = {n: context.get_result(f"sq{n}") for n in range(6)}
    assert {n: value for n, (value, _) in results.items()} == {n: n * n for n in range(6)}
    killed_pid = int(marker.read_text())
    assert results[3][1] != killed_pid  # the second run was in the child that replaced it
    # It ran twice, but its channel write counts once (the re-run's append is the same write).
    assert sorted(n for n, _ in context.channel.get("started")) == list(range(6))
    assert {pid for _, pid in results.values()}.isdisjoint({worker.pid})
    assert worker.process.poll() is None  # the worker itself lived on
    log = worker.log()
    assert '"event": "task_process_died"' in log
    assert "killed by SIGKILL" in log
    assert '"reason": "process_died"' in log


def test_a_signed_run_is_verified_and_signed_in_the_children(fleet: Fleet) -> None:
    fleet.start("sealed-pool", "--pool", "processes", "--concurrency", "2", "--secret-key", KEY)
    context = run_on(fleet, squares(4), secret_key=KEY)
    # total read its predecessors' results and each square wrote to the channel in a child:
    # both are sealed in Redis and only open with the key the worker handed its children.
    assert context.get_result("total") == 0 + 1 + 4 + 9
    assert sorted(n for n, _ in context.channel.get("started")) == [0, 1, 2, 3]


def test_sigterm_lets_a_task_in_a_child_finish_and_counts_it(fleet: Fleet) -> None:
    worker = fleet.start("draining-pool", "--pool", "processes", "--concurrency", "1")
    with workflow("drain") as wf:

        @task("slow")
        def slow() -> int:
            import time

            time.sleep(2.0)
            return os.getpid()

    finish = run_in_background(fleet, wf.graph, running_on="draining-pool")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    child = finish().get_result("slow")
    assert child != worker.pid  # it ran in a child, and once: finished there, not handed back
    log = worker.log()
    assert '"drained": true' in log
    assert '"tasks_processed": 1' in log
    assert '"event": "task_released"' not in log


def run_in_background(fleet: Fleet, graph: Any, *, running_on: str) -> Callable[[], ExecutionContext]:
    """Start a run on a thread and wait until worker ``running_on`` runs a task of it; call the
    result to wait for the run's end and get its context."""
    done: dict[str, ExecutionContext] = {}
    driver = threading.Thread(target=lambda: done.update(context=run_on(fleet, graph)), daemon=True)
    driver.start()

    def running() -> bool:
        return any(w.get("running") for w in fleet.queue().workers() if w.get("worker_id") == running_on)

    wait_until(running, 30, f"a task to start in a child of {running_on}")

    def finish() -> ExecutionContext:
        driver.join(60)
        assert "context" in done, "the run did not finish within 60s"
        return done["context"]

    return finish


def test_a_task_that_kills_every_child_it_runs_in_fails_its_run_once_its_deliveries_run_out(
    fleet: Fleet,
) -> None:
    worker = fleet.start("poisoned-pool", "--pool", "processes", "--concurrency", "1")
    with workflow("poison") as wf:

        @task("poison")
        def poison() -> None:
            os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(Exception) as failure:
        run_on(fleet, wf.graph)
    assert "started 10 times without completing" in str(failure.value)
    assert worker.log().count('"event": "task_process_died"') == 10
    assert worker.process.poll() is None
    assert fleet.queue().dead_letters()[0]["task"] == "poison"


def test_max_tasks_per_child_gives_a_real_worker_a_fresh_child_every_n_tasks(fleet: Fleet) -> None:
    worker = fleet.start(
        "recycling", "--pool", "processes", "--concurrency", "1", "--max-tasks-per-child", "2"
    )
    with workflow("recycle") as wf:
        chain = [task(f"step{n}")(os.getpid) for n in range(6)]
        for before, after in zip(chain, chain[1:], strict=False):
            before >> after  # type: ignore[operator]
    context = run_on(fleet, wf.graph)
    pids = [context.get_result(f"step{n}") for n in range(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert len(set(pids)) == 3 and worker.pid not in pids


def test_a_child_logs_as_its_worker_does_and_does_not_repeat_its_warnings(fleet: Fleet) -> None:
    worker = fleet.start(
        "logging-pool", "--pool", "processes", "--concurrency", "2", "--max-tasks-per-child", "1"
    )
    with workflow("logs") as wf:

        @task("speak")
        def speak() -> str:
            import logging

            logging.getLogger("user.code").warning("said in a child")
            return "spoken"

        @task("again")
        def again() -> str:
            return "again"

        speak >> again  # type: ignore[operator]

    assert run_on(fleet, wf.graph).get_result("speak") == "spoken"
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    said = [line for line in lines if line.get("event") == "said in a child"]
    assert [(line["logger"], line["level"]) for line in said] == [("user.code", "warning")]
    assert len([line for line in lines if line.get("event") == "redis_unsigned"]) == 1  # the worker's own
    assert all(line.startswith("{") for line in worker.log().splitlines())


def test_sigterm_hands_back_a_task_that_outlives_the_timeout_and_kills_its_child(
    fleet: Fleet, tmp_path: Path
) -> None:
    first = fleet.start("impatient-pool", "--pool", "processes", "--graceful-shutdown-timeout", "0.5")
    starts = tmp_path / "started"  # a file, not the channel: the second run's write would count once
    with workflow("handback") as wf:

        @task("long")
        def long() -> int:
            import time

            with open(starts, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(4.0)
            return os.getpid()

    finish = run_in_background(fleet, wf.graph, running_on="impatient-pool")
    second = fleet.start("taker", "--pool", "processes")
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0
    context = finish()
    first_child, second_child = (int(pid) for pid in starts.read_text().split())
    assert context.get_result("long") == second_child != first_child
    assert not pid_alive(first_child)  # killed at the hand-back, not left running beside the taker's run
    assert '"reason": "graceful_shutdown_timeout"' in first.log()
    assert second.process.poll() is None
