"""The workflow every Redis-topology test runs: a parallel group of squares, then their sum.

Each member records ``(name, worker pid)`` in the run's channel when it starts, so a test
can break a server once work is under way, and returns ``n * n``; ``total`` reads every
member's result back from the run's state. Exact results prove no task was lost.
"""

from __future__ import annotations

import os
import time
from typing import Any

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from tests.support.background_run import Run
from tests.support.fleet import Fleet

#: How many members the group has.
MEMBERS = 8
#: What ``total`` returns when every member ran and its result was kept.
TOTAL = sum(n * n for n in range(MEMBERS))


def build(seconds: float) -> None:
    """``square0 | ... | square7 >> total``, each square taking ``seconds``."""

    def square(n: int) -> Any:
        @task(f"square{n}", inject_context=True)
        def run(ctx: TaskExecutionContext) -> int:
            ctx.get_channel().append("started", (f"square{n}", os.getpid()))
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
