"""CoordinationBackend.MULTIPROCESSING: the coordinator contract, plus what processes add."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graflow.coordination.coordinator import CoordinationBackend, Coordinator, MemberRunner
from graflow.coordination.processes import MultiprocessingCoordinator
from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.dsl import parallel
from graflow.core.engine import WorkflowEngine
from graflow.core.group import ParallelGroup
from graflow.core.handler import TaskResult
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from graflow.plugins import get_plugin_manager, hookimpl
from tests.core.coordination.contract import Backend, CoordinatorContract
from tests.core.coordination.members import GRACE, PATIENCE, ended, run_past_a_hung_member
from tests.support.waiting import wait_until


class _KeptOpen(Coordinator):
    """One run's handle on a coordinator shared by a test class: runs groups on its pools, leaves them open."""

    def __init__(self, shared: MultiprocessingCoordinator) -> None:
        self._shared = shared

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        return self._shared.run_members(group, run_member, context)


class _SharedPools:
    """A plugin that gives every run's MULTIPROCESSING groups the pools of one coordinator."""

    def __init__(self) -> None:
        self.coordinator = MultiprocessingCoordinator()

    @hookimpl
    def graflow_coordinators(self) -> dict[str, Callable[[], Coordinator]]:
        return {"multiprocessing": lambda: _KeptOpen(self.coordinator)}


class TestMultiprocessingCoordinator(CoordinatorContract):
    """MULTIPROCESSING meets the contract as it stands; a timed-out member's process is killed.

    The runs of this class share one coordinator, so its pools start once, not once per
    test: the coordinator is built to serve every group of a run, and a run only adds
    :meth:`~graflow.coordination.coordinator.Coordinator.close` at its end, which the
    contract tests on a coordinator of its own. A group with a timeout still gets a pool
    of its own, as it does in any run.
    """

    @pytest.fixture(scope="class")
    @classmethod
    def shared(cls) -> Iterator[MultiprocessingCoordinator]:
        plugin = _SharedPools()
        manager = get_plugin_manager()
        name = manager.register(plugin, name="test-shared-multiprocessing-pools")
        try:
            yield plugin.coordinator
        finally:
            manager.unregister(name)
            plugin.coordinator.close()

    @pytest.fixture
    def backend(self, shared: MultiprocessingCoordinator) -> Backend:
        return Backend(CoordinationBackend.MULTIPROCESSING.value)

    @pytest.fixture
    def coordinator(self) -> Coordinator:
        """A coordinator of its own, unlike the runs' shared one: the test closes it."""
        return MultiprocessingCoordinator()


def _file_rendezvous(task_id: str, folder: Path, parties: int) -> TaskWrapper:
    """A task that returns its pid once ``parties`` tasks have checked in: a barrier across processes."""

    def body() -> int:
        (folder / f"{task_id}.pid").write_text(str(os.getpid()))
        wait_until(lambda: len(list(folder.glob("*.pid"))) >= parties, PATIENCE, "the other members")
        return os.getpid()

    return TaskWrapper(task_id, body)


def test_members_run_at_the_same_time_in_processes_other_than_the_engines(tmp_path: Path) -> None:
    with workflow("processes_meet") as wf:
        group = _file_rendezvous("left", tmp_path, 2) | _file_rendezvous("right", tmp_path, 2)
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=2)
        _, context = wf.execute(ret_context=True)

    pids = {context.get_result("left"), context.get_result("right")}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_max_workers_bounds_the_processes_used() -> None:
    with workflow("one_process") as wf:
        group = parallel(*(TaskWrapper(f"m{i}", os.getpid) for i in range(4)))
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=1)
        _, context = wf.execute(ret_context=True)

    pids = set(context.get_result(group.task_id).values())
    assert len(pids) == 1
    assert os.getpid() not in pids


def test_members_see_the_environment_as_it_is_when_the_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_closures_and_lambdas_travel_to_members() -> None:
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


def test_a_timed_out_member_is_stopped_with_its_process(tmp_path: Path) -> None:
    group_id, context = run_past_a_hung_member(
        CoordinationBackend.MULTIPROCESSING.value, TestMultiprocessingCoordinator.timeout, tmp_path
    )

    pid = int((tmp_path / "hang.started").read_text())
    assert pid != os.getpid()
    wait_until(lambda: ended(tmp_path, "hang"), PATIENCE, "the member's process to be gone")
    time.sleep(GRACE)
    assert not (tmp_path / "hang.finished").exists(), "released, a stopped member cannot finish"
    assert context.get_result(group_id) == {"quick": "quick"}


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
