"""A task that kills its worker is dead-lettered alone (issue 16, item 4), with real workers under a supervisor.

Twelve one-second tasks and one that calls ``os._exit(1)`` run in one group on two
``graflow-worker`` processes that a supervisor thread restarts whenever one dies, as
systemd or Kubernetes would. The tasks that shared the bomb's first worker are taken over
and run alone, so they complete; the bomb alone is started ``--max-deliveries`` times,
each start recorded in a file, and then dead-lettered.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from graflow.core.decorators import task
from graflow.core.group import ParallelGroup
from tests.chaos.supervisor import Supervisor
from tests.e2e.test_fleet_faults import Run, config_for
from tests.support.fleet import Fleet

MAX_DELIVERIES = 3


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

    supervisor = Supervisor(fleet, 2, "--max-deliveries", str(MAX_DELIVERIES))
    try:
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
