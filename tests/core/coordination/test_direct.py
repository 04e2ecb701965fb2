"""CoordinationBackend.DIRECT: the coordinator contract, with what running members one by one changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.dsl import parallel
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from tests.core.coordination.contract import Backend, CoordinatorContract, raises
from tests.core.coordination.members import peak, returns, timed, waits

#: Longer than the class's timeout by a margin no scheduler delay can eat: the member surely overruns.
OVERRUN = 0.5


class TestDirectCoordinator(CoordinatorContract):
    """DIRECT runs members one after another in the engine's thread, so it differs twice.

    Members never run at the same time: the contract's concurrency test is replaced by
    :meth:`test_members_run_one_after_another_in_the_engines_thread`. A running member
    cannot be interrupted: the timeout tests are overridden to say what happens instead.
    """

    #: Short: members here run in the engine's thread, with nothing to wait for but themselves.
    timeout = 0.2

    @pytest.fixture
    def backend(self) -> Backend:
        return Backend(CoordinationBackend.DIRECT.value)

    #: Replaced: DIRECT never runs two members at once (see the next test).
    test_members_run_at_the_same_time = None

    def test_members_run_one_after_another_in_the_engines_thread(self, backend: Backend) -> None:
        seen: list[tuple[str, int]] = []

        def recorder(task_id: str) -> TaskWrapper:
            return TaskWrapper(task_id, lambda: seen.append((task_id, threading.get_ident())))

        with workflow("direct_order") as wf:
            parallel(*(recorder(f"m{i}") for i in range(5))).with_execution(backend=backend.name)
            backend.execute(wf)

        assert seen == [(f"m{i}", threading.get_ident()) for i in range(5)]

    def test_max_workers_bounds_how_many_members_run_at_once(self, backend: Backend, tmp_path: Path) -> None:
        """Overrides the contract's test: one member at a time, whatever ``max_workers`` allows."""
        with workflow("bounded") as wf:
            parallel(*(timed(f"m{i}", 0.05) for i in range(4))).with_execution(
                backend=backend.name, max_workers=2
            )
            _, context = backend.execute(wf)

        spans = context.channel.get("spans")
        assert [tid for tid, _, _ in spans] == ["m0", "m1", "m2", "m3"]
        assert peak(spans) == 1

    def test_a_member_still_running_at_the_group_timeout_fails_and_the_run_goes_on(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """Overrides the contract's test: a running member cannot be interrupted, so the run
        waits for it, then counts it as timed out; members after it fail without starting."""
        with workflow("timeout") as wf:
            group = waits("slow", OVERRUN, "slow") | returns("next", "next")
            group.with_execution(
                backend=backend.name, timeout=self.timeout, policy=ErrorHandlingPolicy.BEST_EFFORT
            )
            later = (returns("x", 2) | returns("y", 3)).with_execution(backend=backend.name)
            group >> later >> returns("after", "after ran")
            result, context = backend.execute(wf)

        assert result == "after ran"
        assert context.get_result(group.task_id) == {}
        assert context.get_result(later.task_id) == {"x": 2, "y": 3}, "a later group still runs"
        assert "slow" not in context.results, "its result came too late to count"
        assert "next" not in context.results

    def test_a_member_timed_out_is_a_failure_the_policy_judges(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """Overrides the contract's test: the member that ran past the timeout fails once it
        returns, and the member after it fails without having started."""
        started = time.monotonic()
        with workflow("timeout_strict") as wf:
            (waits("slow", OVERRUN, "slow") | returns("next", "next")).with_execution(
                backend=backend.name, timeout=self.timeout
            )
            context = backend.context(wf)

        error = raises(ParallelGroupError, context)

        assert time.monotonic() - started >= OVERRUN, "the run waited for the running member"
        assert error.successful_tasks == []
        assert error.failed_tasks == [
            (
                "slow",
                f"TimeoutError: member 'slow' outlived its group's timeout of {self.timeout}s; 'slow' finished too late to count",
            ),
            ("next", f"TimeoutError: still running after the group's timeout of {self.timeout}s"),
        ]
