"""The coordinator contract (SPEC section 8), as one suite every coordination backend must pass.

:class:`CoordinatorContract` holds the tests; a backend runs them by subclassing it and
providing a ``backend`` fixture, a :class:`Backend` that names it and gives the run's
config (see ``tests/core/coordination/test_threaded.py``). The Redis suite is::

    class TestRedisCoordinator(CoordinatorContract):
        @pytest.fixture
        def backend(self, config, thread_worker):
            return Backend("redis", config)

Every test goes through the public API: ``workflow``, ``|``, ``with_execution(backend=...)``,
``execute`` and ``ParallelGroupError``. Members may run in other processes, where a
closure is a copy: members that must meet or wait do it with files
(:mod:`tests.core.coordination.members`), and overlap is measured with timestamps
written to the channel, never with tight wall-clock bounds.

Where a backend legitimately differs (DIRECT runs one member at a time and cannot
interrupt one), its subclass overrides the test of the same name and says why in the
override's docstring; the contract itself is never loosened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from graflow.coordination.coordinator import CoordinationBackend, Coordinator
from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.dsl import parallel
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskResult
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import Executable, TaskWrapper
from graflow.core.workflow import WorkflowContext, workflow
from graflow.exceptions import GraflowWorkflowCanceledError, ParallelGroupError
from graflow.plugins import get_plugin_manager
from graflow.remote.build import build_envelope
from graflow.remote.executor import RemoteExecutor
from tests.core.coordination.members import (
    appends,
    fails,
    hangs,
    meets,
    peak,
    release,
    releases_then_reads,
    returns,
    waits,
)
from tests.core.coordination.policy_cases import CASES, MEMBERS, VALUES, MinimumTotal, member

__all__ = ["Backend", "CoordinatorContract", "raises"]

#: What a member of the max_workers test holds its place for, once it runs.
HOLD = 0.1

E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True)
class Backend:
    """How the contract reaches one coordination backend."""

    #: What ``with_execution(backend=...)`` is given.
    name: str
    #: The run's ``config``: where a backend that sends members elsewhere finds them a place.
    config: Mapping[str, Any] = field(default_factory=dict)

    def execute(self, wf: WorkflowContext, **options: Any) -> tuple[Any, ExecutionContext]:
        """``wf.execute(ret_context=True, ...)`` with this backend's config."""
        result, context = wf.execute(ret_context=True, config=dict(self.config), **options)
        return result, context

    def context(self, wf: WorkflowContext) -> ExecutionContext:
        """A context for ``wf`` with this backend's config, to run and inspect after it fails."""
        return wf.create_context(config=dict(self.config))


def raises(error_type: type[E], context: ExecutionContext) -> E:
    """Run ``context``; return the ``error_type`` it must raise."""
    with pytest.raises(error_type) as caught:
        WorkflowEngine().execute(context)
    return caught.value


class CoordinatorContract:
    """What every coordination backend does. Subclasses provide the ``backend`` fixture."""

    #: The timeout of the groups that test timeouts: ample for a quick member to finish
    #: on this backend, even on a loaded machine (a subclass may shorten it).
    timeout = 1.0

    @pytest.fixture
    def coordinator(self, backend: Backend) -> Coordinator:
        """A fresh coordinator of the backend, as a run gets one."""
        return get_plugin_manager().coordinator(backend.name)

    # --- outcomes --------------------------------------------------------------------------

    def test_every_member_ends_as_one_outcome_in_member_order(self, backend: Backend) -> None:
        policy = MinimumTotal(0)
        with workflow("outcomes") as wf:
            # Where members run at the same time, the first one finishes last.
            group = waits("a", 0.2, 1) | fails("b") | waits("c", 0.0, 4)
            group.with_execution(backend=backend.name, policy=policy)
            _, context = backend.execute(wf)

        assert list(policy.seen) == ["a", "b", "c"]
        a, b, c = policy.seen.values()
        assert (a.task_id, a.success, a.result, a.error_message) == ("a", True, 1, None)
        assert (b.task_id, b.success, b.result, b.error_message) == ("b", False, None, "ValueError: b broke")
        assert (c.task_id, c.success, c.result, c.error_message) == ("c", True, 4, None)
        assert all(outcome.duration >= 0.0 for outcome in (a, b, c))
        assert list(context.get_result(group.task_id)) == ["a", "c"]

    def test_a_member_exception_fails_that_member_instead_of_escaping(self, backend: Backend) -> None:
        with workflow("member_error") as wf:
            group = (returns("a", 1) | fails("b") | returns("c", 4)).with_execution(backend=backend.name)
            group >> returns("after", "after ran")
            context = backend.context(wf)

        error = raises(ParallelGroupError, context)

        assert error.group_id == group.task_id
        assert error.failed_tasks == [("b", "ValueError: b broke")]
        assert error.successful_tasks == ["a", "c"]
        assert isinstance(error.__cause__, ValueError), "the member's exception is the group error's cause"
        assert str(error.__cause__) == "b broke"
        assert (context.get_result("a"), context.get_result("c")) == (1, 4), "its siblings still ran"
        assert "after" not in context.results

    @pytest.mark.parametrize("case_name", list(CASES))
    def test_every_policy_judges_the_group_as_it_does_on_every_other_backend(
        self, backend: Backend, case_name: str
    ) -> None:
        case = CASES[case_name]
        policy = case.policy()
        with workflow("policy_matrix") as wf:
            group = parallel(*(member(tid, tid in case.failing) for tid in MEMBERS))
            group.with_execution(backend=backend.name)
            if policy is not None:
                group.with_policy(policy)
            group >> returns("after", "after ran")
            context = backend.context(wf)
        succeeded = [tid for tid in MEMBERS if tid not in case.failing]

        if case.passes:
            WorkflowEngine().execute(context)
            assert context.get_result("after") == "after ran", "successors run when the group passes"
            assert context.get_result(group.task_id) == {tid: VALUES[tid] for tid in succeeded}
        else:
            error = raises(ParallelGroupError, context)
            assert error.group_id == group.task_id
            assert error.failed_tasks == [(tid, f"ValueError: {tid} broke") for tid in case.failing]
            assert error.successful_tasks == succeeded
            assert "after" not in context.results, "successors do not run when the group fails"
            assert group.task_id not in context.results
        for tid in case.failing:
            assert tid not in context.results, "a failed member has no result"
        for tid in succeeded:
            assert context.get_result(tid) == VALUES[tid]

    def test_the_group_result_maps_each_successful_member_to_its_result(self, backend: Backend) -> None:
        with workflow("group_result") as wf:
            group = returns("a", 1) | fails("b") | returns("c", {"nested": [4]})
            group.with_execution(backend=backend.name, policy=ErrorHandlingPolicy.BEST_EFFORT)
            reader = TaskWrapper("reader", lambda ctx: ctx.get_result(group.task_id), inject_context=True)
            group >> reader
            result, context = backend.execute(wf)

        assert result == {"a": 1, "c": {"nested": [4]}}, "successors read the group's result by its id"
        assert context.get_result(group.task_id) == {"a": 1, "c": {"nested": [4]}}
        assert "b" not in context.results

    # --- what members do -------------------------------------------------------------------

    def test_a_chain_member_runs_in_order_and_reports_its_last_elements_result(
        self, backend: Backend
    ) -> None:
        with workflow("chain_member") as wf:
            first, second, third = appends("first"), appends("second"), appends("third")
            group = ((first >> second >> third) | appends("lone")).with_execution(backend=backend.name)
            _, context = backend.execute(wf)

        chain_id = group.member_ids[0]
        assert [tid for tid in context.channel.get("order") if tid != "lone"] == ["first", "second", "third"]
        assert context.get_result(group.task_id) == {chain_id: "third", "lone": "lone"}

    def test_a_member_next_task_runs_in_its_branch_before_the_groups_successors(
        self, backend: Backend
    ) -> None:
        def spawn(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().append("order", "spawner")
            ctx.next_task(appends("dynamic"))
            return "spawned"

        with workflow("dynamic_member") as wf:
            spawner = TaskWrapper("spawner", spawn, inject_context=True)
            group = (spawner | appends("sibling")).with_execution(backend=backend.name)
            group >> appends("after")
            _, context = backend.execute(wf)

        order = context.channel.get("order")
        assert sorted(order) == ["after", "dynamic", "sibling", "spawner"]
        assert order.index("spawner") < order.index("dynamic") < order.index("after")
        assert context.get_result("spawner") == "spawned", "the member's own result, not the added task's"
        assert context.get_result(group.task_id) == {"spawner": "spawned", "sibling": "sibling"}
        assert context.get_result("dynamic") == "dynamic"
        assert ("spawner", "dynamic") in context.graph.dynamic_edges

    def test_a_member_next_iteration_repeats_it_in_its_branch_before_the_groups_successors(
        self, backend: Backend
    ) -> None:
        def count(ctx: TaskExecutionContext, data: int | None = None) -> int:
            step = 0 if data is None else data
            ctx.get_channel().append("order", f"count{step}")
            if step < 3:
                ctx.next_iteration(step + 1)
            return step

        with workflow("iterating_member") as wf:
            counter = TaskWrapper("counter", count, inject_context=True)
            group = (counter | appends("sibling")).with_execution(backend=backend.name)
            group >> appends("after")
            _, context = backend.execute(wf)

        order = context.channel.get("order")
        assert [step for step in order if step.startswith("count")] == [
            "count0",
            "count1",
            "count2",
            "count3",
        ]
        assert order[-1] == "after"
        assert context.get_result("counter") == 3
        assert context.cycle_counts["counter"] == 4

    def test_channel_writes_of_members_are_visible_to_the_groups_successors(self, backend: Backend) -> None:
        amounts = {"m1": 1, "m2": 2, "m3": 3, "m4": 4}

        def writer(task_id: str) -> TaskWrapper:
            def body(ctx: TaskExecutionContext) -> None:
                channel = ctx.get_channel()
                channel.atomic_add("total", amounts[task_id])
                channel.append("seen", task_id)
                channel.set(f"value_{task_id}", amounts[task_id] * 10)

            return TaskWrapper(task_id, body, inject_context=True)

        def report(ctx: TaskExecutionContext) -> tuple[int, list[str], list[int]]:
            channel = ctx.get_channel()
            values = [channel.get(f"value_{tid}") for tid in amounts]
            return channel.get("total"), sorted(channel.get("seen")), values

        with workflow("channel_writes") as wf:
            group = parallel(*(writer(tid) for tid in amounts)).with_execution(backend=backend.name)
            group >> TaskWrapper("report", report, inject_context=True)
            result, _ = backend.execute(wf, initial_channel={"total": 100})

        assert result == (110, ["m1", "m2", "m3", "m4"], [10, 20, 30, 40])

    def test_a_group_nested_in_a_member_runs_under_its_own_backend(self, backend: Backend) -> None:
        ran_here: list[str] = []  # only a task that runs in this process, not a copy of it, adds to this

        def here(task_id: str) -> TaskWrapper:
            return TaskWrapper(task_id, lambda: ran_here.append(task_id))

        with workflow("nested") as wf:
            in_threads = (here("t1") | here("t2")).with_execution(backend=CoordinationBackend.THREADING)
            in_processes = (TaskWrapper("p1", os.getpid) | TaskWrapper("p2", os.getpid)).with_execution(
                backend=CoordinationBackend.MULTIPROCESSING
            )
            outer = (appends("a") >> in_threads) | (appends("b") >> in_processes)
            outer.with_execution(backend=backend.name)
            _, context = backend.execute(wf)

        assert sorted(ran_here) == ["t1", "t2"], "the THREADING group ran its members in this process"
        pids = context.get_result(in_processes.task_id)
        assert sorted(pids) == ["p1", "p2"]
        assert os.getpid() not in pids.values(), "the MULTIPROCESSING group ran its members elsewhere"
        assert sorted(context.channel.get("order")) == ["a", "b"]

    def test_cancel_workflow_in_a_member_stops_the_run(self, backend: Backend) -> None:
        def stop(ctx: TaskExecutionContext) -> str:
            ctx.cancel_workflow("inventory is gone")
            return "stopped"

        with workflow("cancel_member") as wf:
            group = (TaskWrapper("stopper", stop, inject_context=True) | returns("other", 2)).with_execution(
                backend=backend.name, policy=ErrorHandlingPolicy.BEST_EFFORT
            )
            group >> returns("after", "after ran")
            context = backend.context(wf)

        error = raises(GraflowWorkflowCanceledError, context)

        assert str(error) == "workflow canceled by task 'stopper': inventory is gone"
        assert group.task_id not in context.results, "a canceled run does not judge the group"
        assert "after" not in context.results

    # --- running at the same time ------------------------------------------------------------

    def test_members_run_at_the_same_time(self, backend: Backend, tmp_path: Path) -> None:
        with workflow("members_meet") as wf:
            group = meets("left", tmp_path, parties=2) | meets("right", tmp_path, parties=2)
            group.with_execution(backend=backend.name, max_workers=2)
            _, context = backend.execute(wf)

        assert context.get_result(group.task_id) == {"left": "left", "right": "right"}
        assert peak(context.channel.get("spans")) == 2

    def test_max_workers_bounds_how_many_members_run_at_once(self, backend: Backend, tmp_path: Path) -> None:
        limit = 2
        with workflow("bounded") as wf:
            # Members wait until ``limit`` of them run, so the bound is reached, then hold
            # their place a moment, so a member beyond the bound would overlap them.
            group = parallel(*(meets(f"m{i}", tmp_path, parties=limit, hold=HOLD) for i in range(2 * limit)))
            group.with_execution(backend=backend.name, max_workers=limit)
            _, context = backend.execute(wf)

        spans = context.channel.get("spans")
        assert sorted(tid for tid, _, _ in spans) == ["m0", "m1", "m2", "m3"]
        assert peak(spans) == limit

    # --- timeouts ------------------------------------------------------------------------------

    def test_a_member_still_running_at_the_group_timeout_fails_and_the_run_goes_on(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        with workflow("timeout") as wf:
            group = returns("quick", "quick") | hangs("hang", tmp_path)
            group.with_execution(
                backend=backend.name, timeout=self.timeout, policy=ErrorHandlingPolicy.BEST_EFFORT
            )
            later = (returns("x", 2) | returns("y", 3)).with_execution(backend=backend.name)
            group >> later >> releases_then_reads("after", "hang", tmp_path)
            try:
                result, context = backend.execute(wf)
            finally:
                release(tmp_path)

        assert context.get_result(group.task_id) == {"quick": "quick"}
        assert context.get_result(later.task_id) == {"x": 2, "y": 3}, "a later group still runs"
        assert result == "no result", "the timed-out member, released later in the run, left no result"
        assert "hang" not in context.results

    def test_a_member_timed_out_is_a_failure_the_policy_judges(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        with workflow("timeout_strict") as wf:
            group = (returns("quick", "quick") | hangs("hang", tmp_path)).with_execution(
                backend=backend.name, timeout=self.timeout
            )
            group >> returns("after", "after ran")
            context = backend.context(wf)
        try:
            error = raises(ParallelGroupError, context)
        finally:
            release(tmp_path)

        assert error.successful_tasks == ["quick"]
        assert error.failed_tasks == [
            ("hang", f"TimeoutError: still running after the group's timeout of {self.timeout}s")
        ]
        assert "after" not in context.results

    # --- the coordinator itself ----------------------------------------------------------------

    def test_close_releases_the_coordinator_and_may_be_called_again(
        self, backend: Backend, coordinator: Coordinator
    ) -> None:
        with workflow("close") as wf:
            group = returns("a", 1) | returns("b", 2)
            context = backend.context(wf)

        def run_member(member: Executable, executor: RemoteExecutor | None) -> TaskResult:
            if executor is None:
                return TaskResult(member.task_id, True, member.run())  # type: ignore[attr-defined]
            outcome = executor.execute(build_envelope(member, context))  # type: ignore[arg-type]
            return TaskResult(member.task_id, outcome.success, outcome.result)

        outcomes = coordinator.run_members(group, run_member, context)
        coordinator.close()
        coordinator.close()

        assert [(o.task_id, o.success, o.result) for o in outcomes] == [("a", True, 1), ("b", True, 2)]
