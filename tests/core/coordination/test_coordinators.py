"""How the coordinators run a group's members: order, concurrency, processes, requests, timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.dsl import parallel
from graflow.core.engine import WorkflowEngine
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError

BACKENDS = [
    pytest.param(CoordinationBackend.DIRECT, id="direct"),
    pytest.param(CoordinationBackend.THREADING, id="threading"),
    pytest.param(CoordinationBackend.MULTIPROCESSING, id="multiprocessing"),
]
CONCURRENT_BACKENDS = [
    pytest.param(CoordinationBackend.THREADING, id="threading"),
    pytest.param(CoordinationBackend.MULTIPROCESSING, id="multiprocessing"),
]
#: Long enough never to expire on a loaded machine; a member that waits this long has failed.
PATIENCE = 20.0


def _append_to_channel(key: str, value: Any) -> TaskWrapper:
    """A task that appends ``value`` to the channel list ``key`` and returns ``value``."""

    def body(ctx: TaskExecutionContext) -> Any:
        ctx.get_channel().append(key, value)
        return value

    return TaskWrapper(str(value), body, inject_context=True)


def _file_rendezvous(task_id: str, folder: Path, parties: int) -> TaskWrapper:
    """A task that returns its pid once ``parties`` tasks have checked in: a barrier across processes."""

    def body() -> int:
        (folder / f"{task_id}.pid").write_text(str(os.getpid()))
        deadline = time.monotonic() + PATIENCE
        while len(list(folder.glob("*.pid"))) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{task_id}: the other members never ran at the same time")
            time.sleep(0.005)
        return os.getpid()

    return TaskWrapper(task_id, body)


# --- DIRECT ------------------------------------------------------------------------------


def test_direct_runs_members_one_after_another_in_the_engine_thread() -> None:
    seen: list[tuple[str, int]] = []

    def recorder(task_id: str) -> TaskWrapper:
        return TaskWrapper(task_id, lambda: seen.append((task_id, threading.get_ident())))

    with workflow("direct_order") as wf:
        parallel(*(recorder(f"m{i}") for i in range(5))).with_execution(backend=CoordinationBackend.DIRECT)
        wf.execute()

    engine_thread = threading.get_ident()
    assert seen == [(f"m{i}", engine_thread) for i in range(5)]


# --- THREADING ---------------------------------------------------------------------------


def test_threading_runs_members_at_the_same_time() -> None:
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


def test_threading_max_workers_bounds_how_many_members_run_at_once() -> None:
    limit = 2
    state = {"active": 0, "peak": 0}
    changed = threading.Condition()

    def member(task_id: str) -> TaskWrapper:
        def body() -> None:
            with changed:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
                changed.notify_all()
                # Wait for a partner (proves members do overlap up to the limit), then give
                # a member beyond the limit a moment to show up if the pool let it start.
                if not changed.wait_for(lambda: state["active"] >= limit, timeout=PATIENCE):
                    raise TimeoutError(f"{task_id}: no other member ran at the same time")
                changed.wait_for(lambda: state["active"] > limit, timeout=0.05)
                state["active"] -= 1

        return TaskWrapper(task_id, body)

    with workflow("bounded_threads") as wf:
        group = parallel(*(member(f"m{i}") for i in range(2 * limit)))
        group.with_execution(backend=CoordinationBackend.THREADING, max_workers=limit)
        wf.execute()

    assert state["peak"] == limit


# --- MULTIPROCESSING ---------------------------------------------------------------------


def test_multiprocessing_runs_members_at_the_same_time_in_other_processes(tmp_path: Path) -> None:
    with workflow("processes_meet") as wf:
        group = _file_rendezvous("left", tmp_path, 2) | _file_rendezvous("right", tmp_path, 2)
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=2)
        _, context = wf.execute(ret_context=True)

    pids = {context.get_result("left"), context.get_result("right")}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_multiprocessing_max_workers_bounds_the_processes_used() -> None:
    with workflow("one_process") as wf:
        group = parallel(*(TaskWrapper(f"m{i}", os.getpid) for i in range(4)))
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=1)
        _, context = wf.execute(ret_context=True)

    pids = set(context.get_result(group.task_id).values())
    assert len(pids) == 1
    assert os.getpid() not in pids


def test_multiprocessing_members_see_the_environment_as_it_is_when_the_run_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def read_marker() -> dict[str, str | None]:
        with workflow("environment") as wf:
            group = parallel(
                *(TaskWrapper(f"m{i}", lambda: os.environ.get("GRAFLOW_TEST_MARKER")) for i in range(2))
            )
            group.with_execution(backend=CoordinationBackend.MULTIPROCESSING)
            _, context = wf.execute(ret_context=True)
        return context.get_result(group.task_id)  # type: ignore[no-any-return]

    monkeypatch.delenv("GRAFLOW_TEST_MARKER", raising=False)
    assert read_marker() == {"m0": None, "m1": None}
    monkeypatch.setenv("GRAFLOW_TEST_MARKER", "set later")
    assert read_marker() == {"m0": "set later", "m1": "set later"}


def test_closures_and_lambdas_travel_to_multiprocessing_members() -> None:
    factor = 6

    with workflow("closures") as wf:

        @task
        def closure() -> tuple[int, int]:
            return os.getpid(), factor + 1

        lam = TaskWrapper("lam", lambda: (os.getpid(), factor * 7))
        (closure | lam).with_execution(backend=CoordinationBackend.MULTIPROCESSING)
        _, context = wf.execute(ret_context=True)

    closure_pid, closure_value = context.get_result("closure")
    lambda_pid, lambda_value = context.get_result("lam")
    assert (closure_value, lambda_value) == (7, 42)
    assert os.getpid() not in (closure_pid, lambda_pid)


def test_channel_writes_of_multiprocessing_members_are_visible_after_the_group() -> None:
    amounts = {"m1": 1, "m2": 2, "m3": 3, "m4": 4}

    def member(task_id: str) -> TaskWrapper:
        def body(ctx: TaskExecutionContext) -> int:
            channel = ctx.get_channel()
            channel.atomic_add("total", amounts[task_id])
            channel.append("seen", task_id)
            channel.set(f"value_{task_id}", amounts[task_id] * 10)
            return os.getpid()

        return TaskWrapper(task_id, body, inject_context=True)

    with workflow("channel_replay") as wf:

        @task(inject_context=True)
        def report(ctx: TaskExecutionContext) -> tuple[int, list[str]]:
            channel = ctx.get_channel()
            return channel.get("total"), sorted(channel.get("seen"))

        group = parallel(*(member(tid) for tid in amounts))
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING)
        group >> report
        result, context = wf.execute(ret_context=True, initial_channel={"total": 100})

    assert result == (110, ["m1", "m2", "m3", "m4"]), "successors see the members' writes"
    channel = context.channel
    assert channel.get("total") == 110
    assert {channel.get(f"value_{tid}") for tid in amounts} == {10, 20, 30, 40}
    assert os.getpid() not in set(context.get_result(group.task_id).values())


def test_a_member_whose_result_cannot_come_back_fails_saying_what_to_return() -> None:
    with workflow("unpicklable_result") as wf:
        group = TaskWrapper("lock_maker", threading.Lock) | TaskWrapper("other", lambda: "fine")
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING)
        context = wf.create_context()
        with pytest.raises(ParallelGroupError) as caught:
            WorkflowEngine().execute(context)

    assert caught.value.successful_tasks == ["other"]
    [(failed_id, message)] = caught.value.failed_tasks
    assert failed_id == "lock_maker"
    assert "cannot be pickled" in message
    assert "return plain data" in message
    assert "lock_maker" not in context.results


# --- requests from members ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_member_next_task_runs_before_the_groups_successors(backend: CoordinationBackend) -> None:
    def spawn(ctx: TaskExecutionContext) -> str:
        ctx.get_channel().append("order", "spawner")
        ctx.next_task(_append_to_channel("order", "dynamic"))
        return "spawned"

    with workflow("dynamic_member") as wf:
        spawner = TaskWrapper("spawner", spawn, inject_context=True)
        group = (spawner | _append_to_channel("order", "sibling")).with_execution(backend=backend)
        group >> _append_to_channel("order", "after")
        _, context = wf.execute(ret_context=True)

    order = context.channel.get("order")
    assert sorted(order) == ["after", "dynamic", "sibling", "spawner"]
    assert order.index("spawner") < order.index("dynamic") < order.index("after")
    assert context.get_result("spawner") == "spawned"
    assert context.get_result("dynamic") == "dynamic"
    assert ("spawner", "dynamic") in context.graph.dynamic_edges


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_member_next_iteration_repeats_it_before_the_groups_successors(
    backend: CoordinationBackend,
) -> None:
    def count(ctx: TaskExecutionContext, data: int | None = None) -> int:
        step = 0 if data is None else data
        ctx.get_channel().append("order", f"count{step}")
        if step < 3:
            ctx.next_iteration(step + 1)
        return step

    with workflow("iterating_member") as wf:
        counter = TaskWrapper("counter", count, inject_context=True)
        group = (counter | _append_to_channel("order", "sibling")).with_execution(backend=backend)
        group >> _append_to_channel("order", "after")
        _, context = wf.execute(ret_context=True)

    order = context.channel.get("order")
    assert [step for step in order if step.startswith("count")] == ["count0", "count1", "count2", "count3"]
    assert order[-1] == "after"
    assert context.get_result("counter") == 3
    assert context.cycle_counts["counter"] == 4


# --- group timeout -----------------------------------------------------------------------


def test_threading_timeout_fails_a_hanging_member_and_best_effort_carries_on() -> None:
    release = threading.Event()
    finished: list[str] = []

    def hang() -> str:
        release.wait(PATIENCE)
        finished.append("hang")
        return "late"

    try:
        with workflow("threading_timeout") as wf:
            group = TaskWrapper("quick", lambda: "quick") | TaskWrapper("hang", hang)
            group.with_execution(
                backend=CoordinationBackend.THREADING, timeout=0.5, policy=ErrorHandlingPolicy.BEST_EFFORT
            )
            group >> TaskWrapper("after", lambda: "after ran")
            result, context = wf.execute(ret_context=True)

        assert finished == [], "the run did not wait for the hanging member"
        assert result == "after ran"
        assert context.get_result(group.task_id) == {"quick": "quick"}
        assert "hang" not in context.results
    finally:
        release.set()


def test_threading_timeout_is_a_member_failure_under_strict() -> None:
    release = threading.Event()
    try:
        with workflow("threading_timeout_strict") as wf:
            group = TaskWrapper("quick", lambda: "quick") | TaskWrapper(
                "hang", lambda: release.wait(PATIENCE)
            )
            group.with_execution(backend=CoordinationBackend.THREADING, timeout=0.5)
            group >> TaskWrapper("after", lambda: "after ran")
            context = wf.create_context()
            with pytest.raises(ParallelGroupError) as caught:
                WorkflowEngine().execute(context)

        assert not release.is_set()
        assert caught.value.successful_tasks == ["quick"]
        [(failed_id, message)] = caught.value.failed_tasks
        assert failed_id == "hang"
        assert message == "TimeoutError: still running after the group's timeout of 0.5s"
        assert "after" not in context.results
    finally:
        release.set()


def test_multiprocessing_timeout_stops_a_hanging_member_and_best_effort_carries_on(tmp_path: Path) -> None:
    done = tmp_path / "hang.done"

    def hang() -> str:
        time.sleep(PATIENCE)
        done.write_text("finished")
        return "late"

    with workflow("process_timeout") as wf:
        group = TaskWrapper("quick", lambda: "quick") | TaskWrapper("hang", hang)
        group.with_execution(
            backend=CoordinationBackend.MULTIPROCESSING, timeout=1.0, policy=ErrorHandlingPolicy.BEST_EFFORT
        )
        group >> TaskWrapper("after", lambda: "after ran")
        result, context = wf.execute(ret_context=True)

    assert not done.exists(), "the run did not wait for the hanging member"
    assert result == "after ran"
    assert context.get_result(group.task_id) == {"quick": "quick"}
    assert "hang" not in context.results


def test_multiprocessing_timeout_is_a_member_failure_under_strict() -> None:
    with workflow("process_timeout_strict") as wf:
        group = TaskWrapper("quick", lambda: "quick") | TaskWrapper("hang", lambda: time.sleep(PATIENCE))
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, timeout=1.0)
        context = wf.create_context()
        with pytest.raises(ParallelGroupError) as caught:
            WorkflowEngine().execute(context)

    assert caught.value.successful_tasks == ["quick"]
    assert caught.value.failed_tasks == [
        ("hang", "TimeoutError: still running after the group's timeout of 1.0s")
    ]


@pytest.mark.parametrize("backend", CONCURRENT_BACKENDS)
def test_a_group_after_a_timed_out_group_still_runs(backend: CoordinationBackend) -> None:
    release = threading.Event()
    first_hang = (
        (lambda: release.wait(PATIENCE))
        if backend is CoordinationBackend.THREADING
        else (lambda: time.sleep(PATIENCE))
    )
    try:
        with workflow("after_timeout") as wf:
            first = TaskWrapper("quick", lambda: 1) | TaskWrapper("hang", first_hang)
            timeout = 0.5 if backend is CoordinationBackend.THREADING else 1.0
            first.with_execution(backend=backend, timeout=timeout, policy=ErrorHandlingPolicy.BEST_EFFORT)
            second = TaskWrapper("x", lambda: 2) | TaskWrapper("y", lambda: 3)
            second.with_execution(backend=backend)
            first >> second
            _, context = wf.execute(ret_context=True)

        assert context.get_result(second.task_id) == {"x": 2, "y": 3}
    finally:
        release.set()


def test_a_member_that_outlived_its_group_timeout_starts_no_further_task_of_its_chain() -> None:
    release = threading.Event()
    slow_done = threading.Event()
    ran: list[str] = []

    with workflow("abandoned_branch") as wf:

        @task
        def slow() -> None:
            release.wait(10)
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

    release.set()  # the abandoned thread now finishes its task, after the run has ended
    assert slow_done.wait(10)
    time.sleep(0.05)  # let the abandoned branch reach the point where it would start the next task
    assert ran == ["quick", "slow"]


def test_a_member_that_finishes_after_its_group_timeout_leaves_no_result_for_the_tasks_after() -> None:
    release = threading.Event()
    hang_done = threading.Event()

    def hang() -> str:
        release.wait(PATIENCE)
        hang_done.set()
        return "late"

    def after(ctx: TaskExecutionContext) -> Any:
        release.set()  # the abandoned member now finishes while the run goes on
        assert hang_done.wait(PATIENCE)
        time.sleep(0.2)  # time for a late result to land, were it kept
        return ctx.get_result("hang", "no result")

    with workflow("late_result") as wf:
        group = TaskWrapper("quick", lambda: "quick") | TaskWrapper("hang", hang)
        group.with_execution(
            backend=CoordinationBackend.THREADING, timeout=0.3, policy=ErrorHandlingPolicy.BEST_EFFORT
        )
        group >> TaskWrapper("after", after, inject_context=True)
        result, context = wf.execute(ret_context=True)

    assert result == "no result"
    assert "hang" not in context.results
    assert context.get_result(group.task_id) == {"quick": "quick"}


def test_a_direct_member_that_runs_past_its_group_timeout_fails_once_it_returns() -> None:
    with workflow("direct_overrun") as wf:
        group = TaskWrapper("slow", lambda: time.sleep(0.4) or "slow") | TaskWrapper("next", lambda: "next")
        group.with_execution(backend=CoordinationBackend.DIRECT, timeout=0.2)
        context = wf.create_context()
        with pytest.raises(ParallelGroupError) as caught:
            WorkflowEngine().execute(context)

    assert caught.value.successful_tasks == []
    [(slow, slow_error), (never, never_error)] = caught.value.failed_tasks
    assert (slow, never) == ("slow", "next")
    assert (
        slow_error
        == "TimeoutError: member 'slow' outlived its group's timeout of 0.2s; 'slow' finished too late to count"
    )
    assert never_error == "TimeoutError: still running after the group's timeout of 0.2s"
    assert "slow" not in context.results


def test_a_script_without_a_main_guard_gets_told_how_to_fix_its_multiprocessing_group(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from graflow import CoordinationBackend, task, workflow\n"
        "with workflow('w') as wf:\n"
        "    @task\n"
        "    def a():\n"
        "        return 1\n"
        "    @task\n"
        "    def b():\n"
        "        return 2\n"
        "    (a | b).with_execution(backend=CoordinationBackend.MULTIPROCESSING)\n"
        "    print('result', wf.execute())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    # Pool processes import the script again and die in its unguarded run: the pool breaks,
    # which stops the run with advice instead of failing each member with a pickling riddle.
    assert done.returncode != 0
    assert "result" not in done.stdout
    assert "ExecutorUnavailableError" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
