"""A durable run you can kill and resume from the command line.

``crunch`` works through six partitions, one per iteration (``next_iteration``), each
taking ``pause`` seconds (default 1.5; ``--set pause=0`` for a quick run). A durable run
records every step in the state directory, so when its process dies the run carries on
from the last recorded step, in another process, without this file.

Walkthrough (from the repository root)::

    $ graflow run examples/durable_run.py --durable --state-dir /tmp/graflow-demo
    run 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a        <- the run id, printed before any task starts
    Running workflow 'partitions' from examples/durable_run.py (queue: memory, kept in ...)
      started   plan
      ...
      started   crunch [iteration 3]
    ^C                                          <- or `kill -9` it from another terminal

    $ graflow runs --state-dir /tmp/graflow-demo
    | run                              | workflow   | status | ... | tasks | error                            |
    | 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a | partitions | failed | ... |   2/3 | task 'crunch': KeyboardInterrupt |
      (after `kill -9` it stays "running": nothing was left to record the end)

    $ graflow resume 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a --state-dir /tmp/graflow-demo
    run 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a
    Resuming workflow 'partitions' (failed, started ...): 3 recorded steps reused, not run again
      started   crunch [iteration 3]            <- the partition in flight at the kill runs again
      ...
    | plan    | reused    |             - | ...
    | crunch  | succeeded | 4 (+2 reused) | ...
    | publish | succeeded |             1 | ...
    Result: {'partitions': 6, 'total': 443}

    $ graflow runs show 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a --state-dir /tmp/graflow-demo
    $ graflow rerun 5c0b9d2e41f84a7c9b3f0e6a1d2c3b4a --from publish --state-dir /tmp/graflow-demo

The source file is not read again by ``resume`` or ``rerun``: the graph is in the store,
functions by value, so moving or editing the file does not change the run.

Each partition's total goes to the channel with ``append``; a durable run keeps the
channel writes with the step that made them, so the totals written before the kill are
there after it. Without ``--state-dir``, durable runs live in ``$GRAFLOW_STATE_DIR``,
else ``./.graflow``.
"""

from __future__ import annotations

import time

from graflow import TaskExecutionContext, task, workflow

PARTITIONS = [f"2024-05-0{day}" for day in range(1, 7)]

with workflow("partitions") as partitions:

    @task(inject_context=True)
    def plan(ctx: TaskExecutionContext) -> int:
        ctx.get_channel().set("partitions", PARTITIONS)
        return len(PARTITIONS)

    @task(inject_context=True, max_cycles=len(PARTITIONS))
    def crunch(ctx: TaskExecutionContext) -> str:
        channel = ctx.get_channel()
        partition = channel.get("partitions")[ctx.cycle_count - 1]
        time.sleep(channel.get("pause", 1.5))  # the real work: read the partition, aggregate it
        channel.append("totals", sum(range(int(partition[-2:]) * 10)) // 10)
        if ctx.cycle_count < len(PARTITIONS):
            ctx.next_iteration()
        return partition

    @task(inject_context=True)
    def publish(ctx: TaskExecutionContext) -> dict[str, int]:
        totals = ctx.get_channel().get("totals")
        return {"partitions": len(totals), "total": sum(totals)}

    plan >> crunch >> publish


if __name__ == "__main__":
    print(partitions.execute(initial_channel={"pause": 0.0}))
