"""The workflow every Redis-topology test runs, and the two scenarios they run it in.

The workflow: a parallel group of squares, then their sum. Each member records
``(name, worker pid)`` beside the run's channel when it starts (``record_start``), so a test can break a server
once work is under way, and returns ``n * n``; ``total`` reads every member's result back
from the run's state. Exact results prove no task was lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from tests.support.background_run import Run, record_start
from tests.support.fleet import Fleet, worker_command
from tests.support.waiting import wait_until

#: How many members the group has.
MEMBERS = 8
#: What ``total`` returns when every member ran and its result was kept.
TOTAL = sum(n * n for n in range(MEMBERS))
#: Every member's result.
EXPECTED = {f"square{n}": n * n for n in range(MEMBERS)}


def build(seconds: float) -> None:
    """``square0 | ... | square7 >> total``, each square taking ``seconds``."""

    def square(n: int) -> Any:
        @task(f"square{n}", inject_context=True)
        def run(ctx: TaskExecutionContext) -> int:
            record_start(ctx.get_channel(), f"square{n}")
            ctx.get_channel().set(f"square{n}", "started")  # the run's channel, on its own slot
            time.sleep(seconds)
            return n * n

        return run

    group = square(0)
    for n in range(1, MEMBERS):
        group = group | square(n)

    @task(inject_context=True)
    def total(ctx: TaskExecutionContext) -> int:
        return sum(int(ctx.get_result(f"square{n}")) for n in range(MEMBERS))

    group >> total


def start(fleet: Fleet, seconds: float) -> Run:
    """The workflow, started on ``fleet``'s Redis and key prefix."""
    config = {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "visibility_timeout": 2.0}
    return Run(lambda: build(seconds), config)


def results(run: Run) -> dict[str, int]:
    """Every member's result, as the run kept it."""
    return {f"square{n}": run.context.get_result(f"square{n}") for n in range(MEMBERS)}


def runs_on_two_workers(fleet: Fleet) -> None:
    """Scenario: two workers run the workflow; every result is exact."""
    fleet.start("w1")
    fleet.start("w2")

    run = start(fleet, seconds=0.1)

    assert run.wait(60) == TOTAL
    assert results(run) == EXPECTED


def survives(fleet: Fleet, crash: Callable[[], None]) -> tuple[float, float]:
    """Scenario: ``crash`` (kill a server, wait for its replacement) once two squares run.

    The run must complete with every result exact, every member started, both workers
    alive. Returns how long after the crash began the replacement was ready and the run
    had finished, in seconds.
    """
    workers = [fleet.start("w1"), fleet.start("w2")]
    run = start(fleet, seconds=1.0)
    wait_until(lambda: len(run.started()) >= 2, 30, "two squares to start")

    crashed_at = time.monotonic()
    crash()
    replaced = time.monotonic() - crashed_at

    assert run.wait(120) == TOTAL
    finished = time.monotonic() - crashed_at
    assert results(run) == EXPECTED
    assert {name for name, _ in run.started()} == set(EXPECTED)
    assert all(w.process.poll() is None for w in workers), "a worker died with the server"
    return replaced, finished


def seen_by_the_command_line(fleet: Fleet) -> None:
    """Scenario: after a run, ``graflow runs`` and ``graflow-worker status`` given the URL report it."""
    fleet.start("w1")
    run = start(fleet, seconds=0.0)
    assert run.wait(60) == TOTAL
    where = ["--redis-url", fleet.redis_url, "--key-prefix", fleet.key_prefix]

    runs = _json([sys.executable, "-m", "graflow", "runs", *where, "--json"])
    status = _json([*worker_command(), "status", *where, "--json"])

    assert [(r["run_id"], r["status"]) for r in runs] == [(run.context.session_id, "succeeded")]
    assert [w["worker_id"] for w in status["workers"]] == ["w1"]
    assert status["queue_depth"] == 0


def _json(command: list[str]) -> Any:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
