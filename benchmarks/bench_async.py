"""Async tasks: how much an ``async def`` task costs next to a sync one, and how well awaits overlap.

    python benchmarks/bench_async.py                 # a table
    python benchmarks/bench_async.py --rounds 7 --json

* **chain overhead**: a chain of N (2,000) no-op tasks, ``async def`` and plain, timed from
  ``execute()`` to its end (the graph is built first), divided by N. An async task hands its
  coroutine to the run's event loop thread and waits for it: a thread switch each way.
* **overlap**: one THREADING group of 1,000 async members that each ``await asyncio.sleep(0.1)``,
  wall time from ``execute()`` to its end (goal: under 0.5 s; sequentially it would be 100 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from graflow import parallel, workflow
from graflow.core.task import TaskWrapper


def chain_us_per_task(n: int, asynchronous: bool) -> float:
    async def anoop() -> None:
        return None

    def noop() -> None:
        return None

    with workflow(f"chain_{asynchronous}") as wf:
        tasks = [TaskWrapper(f"t{i}", anoop if asynchronous else noop) for i in range(n)]
        for a, b in zip(tasks, tasks[1:], strict=False):
            a >> b
        started = time.perf_counter()
        wf.execute(max_steps=n + 1)
        return (time.perf_counter() - started) / n * 1e6


def overlap_seconds(members: int, seconds: float) -> float:
    with workflow("overlap") as wf:

        async def wait(n: int) -> int:
            await asyncio.sleep(seconds)
            return n

        parallel(*(TaskWrapper("w", wait).bind(f"m{n}", n=n) for n in range(members)))
        started = time.perf_counter()
        result = wf.execute()
        elapsed = time.perf_counter() - started
    assert len(result) == members
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", type=int, default=2000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    chain_us_per_task(200, True), chain_us_per_task(200, False)  # warm-up
    samples: dict[str, list[float]] = {"sync_chain_us": [], "async_chain_us": [], "overlap_s": []}
    for _ in range(args.rounds):
        samples["sync_chain_us"].append(chain_us_per_task(args.chain, False))
        samples["async_chain_us"].append(chain_us_per_task(args.chain, True))
        samples["overlap_s"].append(overlap_seconds(args.members, 0.1))
    medians: dict[str, Any] = {k: statistics.median(v) for k, v in samples.items()}
    if args.json:
        print(json.dumps({"samples": samples, "medians": medians}))
        return 0
    print(f"chain of {args.chain} no-op tasks, sync : {medians['sync_chain_us']:8.1f} us/task")
    print(f"chain of {args.chain} no-op tasks, async: {medians['async_chain_us']:8.1f} us/task")
    print(f"{args.members} async members awaiting 0.1 s: {medians['overlap_s']:.3f} s (goal < 0.5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
