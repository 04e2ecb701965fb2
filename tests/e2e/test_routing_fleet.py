"""Where and how fast tasks run on the fleet (SPEC 19), with real ``graflow-worker`` processes.

* queues: a task runs only on a worker that serves its queue (checked by pid), and a task
  on a queue no live worker serves fails naming the queue;
* priorities: a worker started after the tasks were queued takes the highest first;
* limits: a rate limit and a concurrency cap hold across two workers, measured from the
  times the tasks themselves recorded.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pytest
import structlog

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.group import ParallelGroup
from tests.e2e.conftest import Fleet
from tests.e2e.test_fleet_faults import Run, config_for
from tests.support.waiting import wait_until


def recorder(name: str, seconds: float = 0.0, **routing: Any) -> Any:
    """A task that records ``(name, pid, started, ended)`` on the run's channel."""

    @task(name, inject_context=True, **routing)
    def work(ctx: TaskExecutionContext) -> int:
        started = time.time()
        time.sleep(seconds)
        ctx.get_channel().append("spans", (name, os.getpid(), started, time.time()))
        return os.getpid()

    return work


def group(*members: Any) -> None:
    ParallelGroup(list(members), name="members")


def spans(run: Run) -> list[tuple[str, int, float, float]]:
    return [tuple(item) for item in run.context.channel.get("spans", [])]  # type: ignore[misc]


def test_each_task_runs_on_a_worker_that_serves_its_queue(fleet: Fleet) -> None:
    cpu = fleet.start("cpu")
    gpu = fleet.start("gpu", "--queues", "gpu")
    both = fleet.start("both", "--queues", "gpu,default", "--max-concurrent-tasks", "1")

    run = Run(
        lambda: group(
            *(recorder(f"render{i}", 0.05, queue="gpu") for i in range(6)),
            *(recorder(f"email{i}", 0.05) for i in range(6)),
        ),
        config_for(fleet),
    )
    run.wait(60)

    where = {name: pid for name, pid, _, _ in spans(run)}
    assert len(where) == 12
    assert {where[f"render{i}"] for i in range(6)} <= {gpu.pid, both.pid}
    assert {where[f"email{i}"] for i in range(6)} <= {cpu.pid, both.pid}
    assert gpu.pid in {where[f"render{i}"] for i in range(6)}
    report = fleet.queue().workers()
    assert {w["worker_id"]: w["queues"] for w in report} == {
        "cpu": ["default"],
        "gpu": ["gpu"],
        "both": ["gpu", "default"],
    }
    assert set(fleet.queue().queue_depths()) >= {"gpu", "default"}


def test_a_task_on_a_queue_no_live_worker_serves_is_named_in_the_warning_and_the_error(
    fleet: Fleet,
) -> None:
    from graflow_redis.errors import NoWorkerAvailableError

    fleet.start("cpu")
    with structlog.testing.capture_logs() as logs:
        run = Run(
            lambda: group(recorder("fine"), recorder("train", queue="tpu")),
            config_for(fleet, worker_wait_timeout=2.0),
        )
        wait_until(
            lambda: [e for e in logs if e["event"] == "no_worker_for_queue"], 10, "the unserved-queue warning"
        )
        with pytest.raises(Exception) as raised:
            run.wait(60)

    warning = next(e for e in logs if e["event"] == "no_worker_for_queue")
    assert warning["queues"] == ["tpu"] and "--queues tpu" in warning["hint"]
    error = raised.value
    while not isinstance(error, NoWorkerAvailableError) and error.__cause__ is not None:
        error = error.__cause__
    assert isinstance(error, NoWorkerAvailableError), repr(raised.value)
    assert error.queue == "tpu" and error.task_id == "train"
    assert "no live graflow-worker serves queue 'tpu'" in str(error) and "--queues tpu" in str(error)
    assert [name for name, *_ in spans(run)] == ["fine"]  # the served queue's task ran
    assert fleet.queue().queue_depths()["tpu"]["waiting"] == 0  # withdrawn: nobody runs it later


def test_a_worker_started_after_the_tasks_were_queued_takes_the_highest_priority_first(
    fleet: Fleet,
) -> None:
    priorities = [0, 9, 3, 7, 5, 1]
    run = Run(
        lambda: group(*(recorder(f"p{p}", priority=p) for p in priorities)),
        config_for(fleet, worker_wait_timeout=60.0),
    )
    queue = fleet.queue()
    wait_until(lambda: queue.depth() == len(priorities), 20, "every task queued")

    fleet.start("late", "--max-concurrent-tasks", "1")
    run.wait(60)

    order = [name for name, _, started, _ in sorted(spans(run), key=lambda s: s[2])]
    assert order == ["p9", "p7", "p5", "p3", "p1", "p0"]


def test_a_rate_limit_holds_across_two_workers(fleet: Fleet) -> None:
    one = fleet.start("one", "--max-concurrent-tasks", "2")
    two = fleet.start("two", "--max-concurrent-tasks", "2")

    run = Run(
        lambda: group(*(recorder(f"call{i}", concurrency_key="api", rate_limit="4/s") for i in range(12))),
        config_for(fleet),
    )
    run.wait(90)

    recorded = sorted(spans(run), key=lambda s: s[2])
    starts = [started for _, _, started, _ in recorded]
    assert len(starts) == 12
    jitter = 0.25  # between Redis granting the start and the task reading its clock, on a busy machine
    # Any 5 consecutive starts span at least the period: never more than 4 in one second.
    assert min(later - earlier for earlier, later in zip(starts, starts[4:], strict=False)) >= 1.0 - jitter
    assert starts[-1] - starts[0] >= 2.0 - jitter
    assert {pid for _, pid, _, _ in recorded} == {one.pid, two.pid}


def overlap_at(moment: float, intervals: list[tuple[float, float]]) -> int:
    return sum(1 for started, ended in intervals if started <= moment < ended)


def test_a_concurrency_cap_holds_across_two_workers(fleet: Fleet) -> None:
    one = fleet.start("one", "--max-concurrent-tasks", "2")
    two = fleet.start("two", "--max-concurrent-tasks", "2")

    run = Run(
        lambda: group(
            *(recorder(f"query{i}", 0.3, concurrency_key="db", max_concurrency=2) for i in range(8))
        ),
        config_for(fleet),
    )
    run.wait(90)

    recorded = spans(run)
    intervals = [(started, ended) for _, _, started, ended in recorded]
    assert len(intervals) == 8
    assert max(overlap_at(started, intervals) for started, _ in intervals) == 2  # reached, never passed
    assert {pid for _, pid, _, _ in recorded} == {one.pid, two.pid}


def test_a_task_waiting_for_its_limit_does_not_hold_up_its_workers_other_work(fleet: Fleet) -> None:
    fleet.start("only", "--max-concurrent-tasks", "2")

    run = Run(
        lambda: group(
            *(recorder(f"capped{i}", 0.8, concurrency_key="db", max_concurrency=1) for i in range(3)),
            *(recorder(f"free{i}", 0.1) for i in range(3)),
        ),
        config_for(fleet),
    )
    run.wait(90)

    recorded = spans(run)
    capped = sorted(started for name, _, started, _ in recorded if name.startswith("capped"))
    free_ended = [ended for name, _, _, ended in recorded if name.startswith("free")]
    assert len(capped) == 3 and len(free_ended) == 3
    assert capped[1] - capped[0] >= 0.8 - 0.1 and capped[2] - capped[1] >= 0.8 - 0.1
    assert max(free_ended) < capped[2]  # the free tasks did not wait behind the capped ones


@pytest.fixture(autouse=True)
def _quiet_graflow_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="graflow")
