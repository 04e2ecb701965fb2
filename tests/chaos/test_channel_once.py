"""Channel effects count once under worker crashes (issue 16, item 5), with real workers killed at random.

2,000 tasks each add 1 to a channel counter and append their index to a channel list, on two
``graflow-worker`` processes that a killer thread SIGKILLs at random while a supervisor
restarts them. Every task whose worker died mid-task runs again; its writes must not.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.group import ParallelGroup
from tests.chaos.supervisor import Supervisor
from tests.e2e.test_fleet_faults import Run, config_for
from tests.support.fleet import Fleet

TASKS = 2_000
KILLS = 6


def counting(i: int) -> Any:
    @task(f"count{i}", inject_context=True)
    def work(ctx: TaskExecutionContext) -> int:
        channel = ctx.get_channel()
        channel.atomic_add("total", 1)
        time.sleep(0.002)  # a kill may fall between the two writes
        channel.append("items", i)
        time.sleep(0.01)
        return i

    return work


def test_counters_and_lists_are_exact_when_workers_are_killed_mid_task(fleet: Fleet) -> None:
    supervisor = Supervisor(fleet, 2, "--max-concurrent-tasks", "4", "--max-deliveries", "30")
    rng = random.Random(16)
    killed: list[Any] = []
    done = threading.Event()

    def kill_at_random() -> None:
        while len(killed) < KILLS and not done.wait(rng.uniform(0.4, 1.2)):
            if supervisor.kill_one(rng) is not None:
                killed.append(time.monotonic())

    try:
        run = Run(lambda: ParallelGroup([counting(i) for i in range(TASKS)], name="all"), config_for(fleet))
        killer = threading.Thread(target=kill_at_random, daemon=True)
        killer.start()
        run.wait(300)
        done.set()
        killer.join(5)
    finally:
        done.set()
        supervisor.stop()

    channel = run.context.channel
    assert len(killed) >= 3, "the run ended before the workers were killed: nothing was tested"
    assert channel.get("total") == TASKS
    items = channel.get("items")
    assert len(items) == TASKS and sorted(items) == list(range(TASKS))
    assert run.context.get_result("all") == {f"count{i}": i for i in range(TASKS)}
    assert fleet.queue().dead_letters() == []
