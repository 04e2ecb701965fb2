"""Process pool against thread pool: CPU-bound Python tasks on ONE ``graflow-worker`` with concurrency 2.

    python benchmarks/bench_pool.py                     # 200 tasks of ~30 ms, 3 rounds per pool
    python benchmarks/bench_pool.py --tasks 400 --task-ms 20 --rounds 5 --json-out pool.json

Each round starts one worker, ``graflow-worker --pool threads|processes --concurrency 2``
(the pools take turns, threads first in odd rounds and processes first in even ones, so a
slow stretch of the shared machine hits both), runs a few warm-up tasks, then times one
parallel group of ``--tasks`` tasks sent to the fleet (``CoordinationBackend.REDIS``),
from ``execute()`` to the last result, and stops the worker. It reports the median time of
each pool, their ratio, and the ratio within each round (a threads run and a processes run
back to back), which a load that comes and goes on a shared machine distorts less.

Every task is a closure over its own ``n``: a pure-Python loop summing ``i * n`` whose
length is calibrated here, once, to take ``--task-ms`` on this machine. Its result is
checked against the closed form ``n * L * (L - 1) / 2``, so a pool that lost or mixed up a
task fails the benchmark instead of looking fast. The closures are defined in this file,
which runs as ``__main__``: they travel to the worker by value, as a user's would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_distributed import stop_processes, wait_for  # this folder is sys.path[0] when run as a script

POOLS = ("threads", "processes")


def cpu_task(n: int, loops: int) -> Callable[[], int]:
    """A task that keeps one core busy for ``loops`` iterations and returns ``n * sum(range(loops))``."""

    def work() -> int:
        total = 0
        for i in range(loops):
            total += i * n
        return total

    return work


def calibrate(task_ms: float) -> int:
    """Loop length that takes about ``task_ms`` milliseconds here (the fastest of a few tries)."""
    probe = 200_000
    best = min(_timed(cpu_task(3, probe)) for _ in range(5))
    return max(1000, int(probe * task_ms / 1000 / best))


def _timed(work: Callable[[], int]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def start_worker(args: argparse.Namespace, pool: str, prefix: str, logs: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("graflow-worker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "graflow_worker"]
    with open(logs / f"{prefix}.log", "wb") as log:
        return subprocess.Popen(
            [
                *command,
                "--redis-url",
                args.redis_url,
                "--key-prefix",
                prefix,
                "--worker-id",
                f"bench-{pool}",
                "--pool",
                pool,
                "--concurrency",
                str(args.concurrency),
                "--log-level",
                "WARNING",
            ],
            cwd=logs,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def run_group(config: dict[str, Any], tasks: int, loops: int) -> float:
    """Seconds from ``execute()`` to the last of ``tasks`` results, every result checked."""
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.context import ExecutionContext
    from graflow.core.engine import WorkflowEngine
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import workflow

    with workflow("cpu") as wf:
        members = [TaskWrapper(f"cpu_{n}", cpu_task(n, loops)) for n in range(tasks)]
        group = members[0] | members[1]
        for member in members[2:]:
            group = group | member
        group.with_execution(backend=CoordinationBackend.REDIS)
    context = ExecutionContext.create(wf.graph, config=config)
    started = time.perf_counter()
    WorkflowEngine().execute(context)
    elapsed = time.perf_counter() - started
    triangle = loops * (loops - 1) // 2
    wrong = [n for n in range(tasks) if context.get_result(f"cpu_{n}") != n * triangle]
    if wrong:
        raise AssertionError(f"{len(wrong)} tasks returned a wrong result, first cpu_{wrong[0]}")
    return elapsed


def one_round(args: argparse.Namespace, pool: str, loops: int, logs: Path) -> float:
    import redis

    from graflow_redis.queue import DistributedTaskQueue

    prefix = f"bench-pool-{uuid.uuid4().hex[:8]}"
    worker = start_worker(args, pool, prefix, logs)
    config = {"redis_url": args.redis_url, "key_prefix": prefix}
    client = redis.Redis.from_url(args.redis_url)
    try:
        queue = DistributedTaskQueue(redis_url=args.redis_url, key_prefix=prefix)
        wait_for(lambda: queue.workers(), 60, f"the {pool} worker")
        run_group(config, 2 * args.concurrency, loops)  # warm-up: children up, connections open
        return run_group(config, args.tasks, loops)
    finally:
        stop_processes([worker], timeout=30)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--task-ms", type=float, default=30.0, help="CPU time of one task (default 30)")
    parser.add_argument("--loops", type=int, help="loop length of a task (default: calibrated to --task-ms)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    import logging

    logging.disable(logging.CRITICAL)
    loops = args.loops or calibrate(args.task_ms)
    task_ms = min(_timed(cpu_task(1, loops)) for _ in range(5)) * 1000
    logs = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    samples: dict[str, list[float]] = {pool: [] for pool in POOLS}
    loads: list[float] = []
    for index in range(args.rounds):
        for pool in POOLS if index % 2 == 0 else reversed(POOLS):
            samples[pool].append(one_round(args, pool, loops, logs))
            print(f"round {index + 1} {pool:9s} {samples[pool][-1]:.2f} s", file=sys.stderr)
        loads.append(os.getloadavg()[0])

    medians = {pool: statistics.median(values) for pool, values in samples.items()}
    # Each round's two runs are minutes apart at most: their ratio cancels a slow change of
    # load on a shared machine better than the ratio of medians does.
    paired = [t / p for t, p in zip(samples["threads"], samples["processes"], strict=True)]
    report = {
        "tasks": args.tasks,
        "concurrency": args.concurrency,
        "loops": loops,
        "task_ms": round(task_ms, 1),
        "cpus": os.cpu_count(),
        "seconds": {pool: [round(s, 3) for s in values] for pool, values in samples.items()},
        "median_seconds": {pool: round(m, 3) for pool, m in medians.items()},
        "speedup": round(medians["threads"] / medians["processes"], 2),
        "paired_speedups": [round(r, 2) for r in paired],
        "paired_speedup_median": round(statistics.median(paired), 2),
        "load_average_after_each_round": [round(x, 2) for x in loads],
        "serial_seconds": round(args.tasks * task_ms / 1000, 2),
    }
    print(f"\n{args.tasks} tasks of {task_ms:.1f} ms on one worker, concurrency {args.concurrency}:")
    print(f"{'pool':10s} {'median':>8s}  samples")
    for pool in POOLS:
        shown = ", ".join(f"{s:.2f}" for s in samples[pool])
        print(f"{pool:10s} {medians[pool]:7.2f}s  {shown}")
    print(f"processes are {report['speedup']}x faster than threads (goal >= 1.7x on 2 cores)")
    print(f"round by round: {report['paired_speedups']}, median {report['paired_speedup_median']}x")
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
