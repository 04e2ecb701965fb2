"""A task that kills its worker is dead-lettered alone (issue 16, item 4), with real workers under a supervisor.

Twelve one-second tasks and one that calls ``os._exit(1)`` run in one group on two
``graflow-worker`` processes that a supervisor thread restarts whenever one dies, as
systemd or Kubernetes would. The tasks that shared the bomb's first worker are taken over
and run alone, so they complete; the bomb alone is started ``--max-deliveries`` times,
each start recorded in a file, and then dead-lettered.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from graflow.core.decorators import task
from graflow.core.group import ParallelGroup
from tests.e2e.conftest import Fleet
from tests.e2e.test_fleet_faults import Run, config_for

MAX_DELIVERIES = 3


class Supervisor:
    """Keeps two workers running: starts a new one whenever one exits."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.restarts = 0
        self._stop = threading.Event()
        self._workers = [self._start() for _ in range(2)]
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self) -> Any:
        return self.fleet.start(None, "--max-deliveries", str(MAX_DELIVERIES), wait=False)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for index, worker in enumerate(self._workers):
                if worker.process.poll() is not None:
                    self.restarts += 1
                    self._workers[index] = self._start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def starts(marks: Path, name: str) -> int:
    path = marks / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_task_that_kills_its_worker_is_dead_lettered_alone_and_the_others_complete(
    fleet: Fleet, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def mark(name: str) -> None:
        with open(marks / name, "a") as f:
            f.write(f"{os.getpid()}\n")

    def innocent(i: int) -> Any:
        @task(f"innocent{i}")
        def work() -> int:
            mark(f"innocent{i}")
            time.sleep(1.0)
            return i * i

        return work

    @task("bomb")
    def bomb() -> None:
        mark("bomb")
        time.sleep(0.3)  # the innocent tasks of its worker are running by now
        os._exit(1)

    supervisor = Supervisor(fleet)
    try:
        fleet.wait_live(*[w.worker_id for w in supervisor._workers])
        run = Run(
            lambda: ParallelGroup([bomb, *(innocent(i) for i in range(12))], name="batch").with_execution(
                policy="best_effort"
            ),
            config_for(fleet),
        )
        run.wait(120)
    finally:
        supervisor.stop()

    assert run.context.get_result("batch") == {f"innocent{i}": i * i for i in range(12)}
    assert starts(marks, "bomb") == MAX_DELIVERIES
    # An innocent task ran once, or twice when it shared the bomb's first worker (then alone).
    assert all(1 <= starts(marks, f"innocent{i}") <= 2 for i in range(12))
    (letter,) = fleet.queue().dead_letters()
    assert letter["task"] == "bomb"
    assert f"started {MAX_DELIVERIES} times without completing" in letter["reason"]
    assert supervisor.restarts == MAX_DELIVERIES
