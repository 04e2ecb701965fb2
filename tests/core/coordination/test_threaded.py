"""CoordinationBackend.THREADING: the coordinator contract, plus what threads add."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.decorators import task
from graflow.core.dsl import parallel
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from tests.core.coordination.contract import Backend, CoordinatorContract
from tests.core.coordination.members import PATIENCE, run_past_a_hung_member
from tests.support.waiting import wait_until


class TestThreadingCoordinator(CoordinatorContract):
    """THREADING meets the contract as it stands; a timed-out member is abandoned, not stopped."""

    #: Members run in this process: nothing to wait for but a thread's start.
    timeout = 0.5

    @pytest.fixture
    def backend(self) -> Backend:
        return Backend(CoordinationBackend.THREADING.value)


def test_members_run_on_threads_of_their_own_not_the_engines() -> None:
    members = 4
    barrier = threading.Barrier(members)

    def meet(task_id: str) -> TaskWrapper:
        # Each member waits for all the others: without concurrency the barrier times out.
        return TaskWrapper(task_id, lambda: (barrier.wait(timeout=PATIENCE), threading.get_ident())[1])

    with workflow("threads_meet") as wf:
        group = parallel(*(meet(f"m{i}") for i in range(members)))
        group.with_execution(backend=CoordinationBackend.THREADING)
        _, context = wf.execute(ret_context=True)

    threads = set(context.get_result(group.task_id).values())
    assert len(threads) == members
    assert threading.get_ident() not in threads


def test_a_timed_out_member_is_abandoned_to_finish_on_its_own(tmp_path: Path) -> None:
    group_id, context = run_past_a_hung_member(
        CoordinationBackend.THREADING.value, TestThreadingCoordinator.timeout, tmp_path
    )

    wait_until((tmp_path / "hang.finished").exists, PATIENCE, "the abandoned thread to finish its member")
    assert context.get_result(group_id) == {"quick": "quick"}
    assert "hang" not in context.results


def test_a_member_that_outlived_its_group_timeout_starts_no_further_task_of_its_chain() -> None:
    release_slow = threading.Event()
    slow_done = threading.Event()
    ran: list[str] = []

    with workflow("abandoned_branch") as wf:

        @task
        def slow() -> None:
            release_slow.wait(10)
            ran.append("slow")
            slow_done.set()

        @task
        def after_slow() -> None:
            ran.append("after_slow")

        @task
        def quick() -> None:
            ran.append("quick")

        ((slow >> after_slow) | quick).with_execution(
            backend=CoordinationBackend.THREADING, policy=ErrorHandlingPolicy.BEST_EFFORT, timeout=0.2
        )
        wf.execute()

    release_slow.set()  # the abandoned thread now finishes its task, after the run has ended
    assert slow_done.wait(10)
    time.sleep(0.05)  # let the abandoned branch reach the point where it would start the next task
    assert ran == ["quick", "slow"]
