"""TaskWorker(pool="processes") against the stub queue: tasks run in children, which die, recycle and stop.

The tasks are closures of this test module; the pool ships them to its children by value,
as it does for tasks that came from a driver.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from graflow.exceptions import ConfigError
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.stub import StubConsumer
from graflow_worker import TaskWorker
from tests.support.processes import pid_alive
from tests.support.waiting import wait_until


def process_worker(queue: Any, **options: Any) -> TaskWorker:
    options.setdefault("worker_id", "w-processes")
    options.setdefault("heartbeat_interval", 0.05)
    options.setdefault("fetch_block", 0.05)
    options.setdefault("pool", "processes")
    return TaskWorker(queue, **options)


def test_tasks_run_in_child_processes_and_their_results_come_back(queue, make_task) -> None:
    def square(n: int) -> Any:
        return lambda: (n * n, os.getpid())

    entries = [queue.put(make_task(f"square{n}", square(n))).entry_id for n in range(6)]
    with process_worker(queue, max_concurrent_tasks=2) as worker:
        queue.wait_for(lambda: len(queue.completed) == 6)
    results = [queue.completed[entry].result for entry in entries]
    assert [value for value, _ in results] == [0, 1, 4, 9, 16, 25]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2  # two children, each serving task after task
    assert (worker.tasks_processed, worker.tasks_succeeded) == (6, 6)
    assert worker.get_metrics()["pool"] == "processes"


def test_a_task_failure_in_a_child_is_the_tasks_failed_outcome(queue, make_task) -> None:
    def boom() -> None:
        raise ValueError("bad input in a child")

    failing = queue.put(make_task("boom", boom))
    with process_worker(queue, max_concurrent_tasks=1) as worker:
        queue.wait_for(lambda: worker.tasks_processed == 1)
    outcome = queue.completed[failing.entry_id]
    assert (outcome.success, outcome.error_type, outcome.error_message) == (
        False,
        "ValueError",
        "bad input in a child",
    )
    assert worker.tasks_failed == 1


def test_a_child_that_dies_mid_task_hands_the_task_back_and_is_replaced(queue, make_task) -> None:
    doomed = queue.put(make_task("doomed", lambda: os._exit(7)))
    with process_worker(queue, max_concurrent_tasks=1) as worker:
        queue.wait_for(lambda: queue.released == [doomed.entry_id])
        after = queue.put(make_task("after", lambda: ("still served", os.getpid())))
        queue.wait_for(lambda: after.entry_id in queue.completed)
    assert doomed.entry_id not in queue.completed
    assert queue.completed[after.entry_id].result[0] == "still served"
    assert (worker.tasks_processed, worker.in_flight) == (1, 0)


def test_on_a_queue_that_redelivers_a_task_whose_child_died_completes_with_the_right_result(
    make_task, tmp_path: Path
) -> None:
    marker = tmp_path / "died-once"

    def dies_once(n: int) -> Any:
        def run() -> int:
            if n == 2 and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return n * 10

        return run

    stub = StubConsumer()
    uids = {stub.put(TaskEnvelope(make_task(f"t{n}", dies_once(n)), "run-1", "unit")): n for n in range(5)}
    with process_worker(stub, max_concurrent_tasks=2) as worker:
        outcomes = stub.join(timeout=30)
        wait_until(lambda: worker.tasks_processed == 5, 10, "every task to be counted")
    assert {uids[uid]: outcome.result for uid, outcome in outcomes.items()} == {n: n * 10 for n in range(5)}
    assert marker.exists()
    assert (worker.tasks_succeeded, worker.tasks_failed) == (5, 0)


def test_child_setup_runs_in_every_child_before_its_first_task(queue, make_task) -> None:
    entries = [queue.put(make_task(f"limit{n}", sys.getrecursionlimit)).entry_id for n in range(3)]
    setup = functools.partial(sys.setrecursionlimit, 4321)  # process-local, so it shows where it ran
    with process_worker(queue, max_concurrent_tasks=2, max_tasks_per_child=1, child_setup=setup):
        queue.wait_for(lambda: len(queue.completed) == 3)
    assert [queue.completed[entry].result for entry in entries] == [4321, 4321, 4321]
    assert sys.getrecursionlimit() != 4321


def test_an_envelope_a_child_cannot_load_fails_its_task_saying_why_and_the_child_serves_on(
    queue, make_task
) -> None:
    # A module that exists in the worker only: its function travels by reference, and the
    # child cannot import it.
    ghost = types.ModuleType("graflow_test_ghost")
    exec("def answer():\n    return 42\n", ghost.__dict__)
    sys.modules[ghost.__name__] = ghost
    try:
        entry = queue.put(make_task("ghostly", ghost.answer)).entry_id
        with process_worker(queue, max_concurrent_tasks=1) as worker:
            queue.wait_for(lambda: entry in queue.completed)
            after = queue.put(make_task("after", os.getpid)).entry_id
            queue.wait_for(lambda: after in queue.completed)
    finally:
        del sys.modules[ghost.__name__]
    outcome = queue.completed[entry]
    assert (outcome.success, outcome.error_type) == (False, "ChildError")
    assert "No module named 'graflow_test_ghost'" in (outcome.error_message or "")
    assert queue.completed[after].success and queue.released == []
    assert (worker.tasks_failed, worker.tasks_succeeded) == (1, 1)


def test_max_tasks_per_child_replaces_a_child_after_that_many_tasks(queue, make_task) -> None:
    entries = [queue.put(make_task(f"pid{n}", os.getpid)).entry_id for n in range(5)]
    with process_worker(queue, max_concurrent_tasks=1, max_tasks_per_child=2):
        queue.wait_for(lambda: len(queue.completed) == 5)
    pids = [queue.completed[entry].result for entry in entries]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert len(set(pids)) == 3


def test_stop_hands_back_a_task_that_outlives_the_timeout_and_kills_its_child(
    queue, make_task, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"

    def stuck() -> None:
        marker.write_text(str(os.getpid()))
        time.sleep(60)

    entry = queue.put(make_task("stuck", stuck)).entry_id
    worker = process_worker(queue, max_concurrent_tasks=1)
    worker.start()
    wait_until(marker.exists, 10, "the task to start in its child")
    pid = int(marker.read_text())
    assert worker.stop(timeout=0.2) is False
    assert queue.released == [entry]
    assert entry not in queue.completed
    wait_until(lambda: not pid_alive(pid), 10, "the child to be killed")


def test_stop_waits_for_running_tasks_in_children_to_finish(queue, make_task) -> None:
    entry = queue.put(make_task("short", lambda: time.sleep(0.5) or "done")).entry_id
    worker = process_worker(queue, max_concurrent_tasks=1)
    worker.start()
    queue.wait_for(lambda: worker.in_flight == 1)
    assert worker.stop(timeout=10) is True
    assert queue.completed[entry].result == "done"
    assert queue.released == []


def test_a_task_timeout_stops_the_task_in_its_child(queue, make_task) -> None:
    entry = queue.put(make_task("slow", lambda: time.sleep(30))).entry_id
    delivery = queue.waiting[-1]
    delivery.envelope.task.timeout = 0.3
    with process_worker(queue, max_concurrent_tasks=1) as worker:
        queue.wait_for(lambda: entry in queue.completed)
    outcome = queue.completed[entry]
    assert (outcome.success, outcome.error_type) == (False, "TaskTimeoutError")
    assert worker.tasks_failed == 1


def test_a_task_in_a_child_may_start_processes_of_its_own(queue, make_task) -> None:
    def fan_out() -> int:
        helper = multiprocessing.get_context("fork").Process(target=os._exit, args=(5,))
        helper.start()
        helper.join()
        return helper.exitcode

    entry = queue.put(make_task("fan_out", fan_out)).entry_id
    with process_worker(queue, max_concurrent_tasks=1):
        queue.wait_for(lambda: entry in queue.completed)
    outcome = queue.completed[entry]
    assert (outcome.success, outcome.result, outcome.error_message) == (True, 5, None)


FORGETFUL = """
import os
import sys
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.stub import StubConsumer
from graflow_worker import TaskWorker

if __name__ == "__main__":
    stub = StubConsumer()
    with workflow("w"):
        uid = stub.put(TaskEnvelope(TaskWrapper("t", os.getpid), "run", "w"))
    worker = TaskWorker(stub, worker_id="forgetful", pool="processes", max_concurrent_tasks=2)
    worker.start()
    with open(sys.argv[1], "w") as out:  # not stdout: the worker's log lines go there too
        out.write(str(stub.outcome(uid, timeout=20).result))
    # the interpreter exits with the worker still running: no stop()
"""


def test_an_interpreter_that_never_stops_its_worker_exits_and_takes_the_children_with_it(
    tmp_path: Path,
) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(FORGETFUL)
    pid_file = tmp_path / "child.pid"
    done = subprocess.run(
        [sys.executable, str(script), str(pid_file)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    child = int(pid_file.read_text())
    wait_until(lambda: not pid_alive(child), 10, "the child to be gone")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool": "fibers"}, "pool must be 'threads' or 'processes', got 'fibers'"),
        ({"pool": "processes", "max_tasks_per_child": 0}, "max_tasks_per_child must be >= 1"),
        ({"pool": "processes", "max_tasks_per_child": 2.5}, "max_tasks_per_child must be an int >= 1"),
        ({"max_tasks_per_child": 10}, "needs pool='processes'"),
        ({"child_setup": print}, "child_setup runs in child processes, so it needs pool='processes'"),
    ],
)
def test_pool_settings_that_make_no_sense_are_refused(queue, options, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaskWorker(queue, **options)
