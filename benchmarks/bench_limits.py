"""Fleet-wide limits at their limit: how close a rate-limited or capped task gets to what it allows.

    python benchmarks/bench_limits.py                    # 2 workers, 4 slots each
    python benchmarks/bench_limits.py --json-out limits.json

Two ``graflow-worker`` processes serve one key prefix on the local Redis. Each case runs
one parallel group on the fleet (``CoordinationBackend.REDIS``) of tasks sharing one
``concurrency_key``, each task returning the time it started:

* ``rate_limit="N/s"``: the achieved start rate, against N: the window admits N starts at
  once and N more per second, so a run of ``n`` starts over ``T`` seconds achieved ``(n - N) / T``;
* ``max_concurrency=C`` with tasks that sleep ``S`` seconds: the achieved throughput,
  against the ideal ``C / S`` per second.

Start times come from the tasks themselves, so they include everything a limited task
pays: the Lua script that grants its place, the wait in the worker's gate, the fetch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_distributed import stop_processes, wait_for  # noqa: E402


def started_at(seconds: float) -> float:
    started = time.time()
    if seconds:
        time.sleep(seconds)
    return started


def run_case(config: dict[str, Any], count: int, seconds: float, **limits: Any) -> list[float]:
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.context import ExecutionContext
    from graflow.core.decorators import task
    from graflow.core.engine import WorkflowEngine
    from graflow.core.group import ParallelGroup
    from graflow.core.workflow import workflow

    with workflow("limits") as wf:
        members = [
            task(f"limited_{i}", concurrency_key="bench", **limits)(lambda s=seconds: started_at(s))
            for i in range(count)
        ]
        ParallelGroup(members, name="limited").with_execution(backend=CoordinationBackend.REDIS)
    context = ExecutionContext.create(wf.graph, config=config)
    WorkflowEngine().execute(context)
    starts = sorted(context.get_result(f"limited_{i}") for i in range(count))
    assert len(starts) == count
    return starts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rates", default="50,200", help="per-second rate limits to measure")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="length of each rate-limited run at its limit"
    )
    parser.add_argument("--cap", type=int, default=4, help="max_concurrency of the capped case")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds each capped task sleeps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    import redis

    from graflow_redis.queue import DistributedTaskQueue

    prefix = f"bench-limits-{uuid.uuid4().hex[:8]}"
    script = Path(sys.executable).with_name("graflow-worker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "graflow_worker"]
    logs = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    workers = []
    for n in range(2):
        with open(logs / f"w{n}.log", "wb") as log:
            argv_worker = [*command, "--redis-url", args.redis_url, "--key-prefix", prefix]
            argv_worker += [
                "--worker-id",
                f"limits-{n}",
                "--max-concurrent-tasks",
                "4",
                "--log-level",
                "WARNING",
            ]
            workers.append(subprocess.Popen(argv_worker, cwd=logs, stdout=log, stderr=subprocess.STDOUT))
    config = {"redis_url": args.redis_url, "key_prefix": prefix}
    results: dict[str, Any] = {}
    try:
        queue = DistributedTaskQueue(redis_url=args.redis_url, key_prefix=prefix)
        wait_for(lambda: len(queue.workers()) == 2, 60, "2 graflow workers")
        run_case(config, 20, 0.0)  # warm-up: imports, connections, by-value registration
        for rate in (int(r) for r in args.rates.split(",")):
            achieved = []
            for _ in range(args.repeats):
                starts = run_case(config, int(rate * (args.seconds + 1)), 0.0, rate_limit=f"{rate}/s")
                # The window admits ``rate`` starts at once, then ``rate`` more per period.
                achieved.append((len(starts) - rate) / (starts[-1] - starts[0]))
            results[f"rate {rate}/s"] = {
                "limit": rate,
                "achieved_median": statistics.median(achieved),
                "achieved": [round(a, 1) for a in achieved],
            }
        ideal = args.cap / args.sleep
        count = int(ideal * args.seconds)
        throughputs = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            run_case(config, count, args.sleep, max_concurrency=args.cap)
            throughputs.append(count / (time.perf_counter() - began))
        results[f"max_concurrency {args.cap}, {args.sleep:g}s tasks"] = {
            "limit": ideal,
            "achieved_median": statistics.median(throughputs),
            "achieved": [round(t, 1) for t in throughputs],
        }
    finally:
        stop_processes(workers)
        client = redis.Redis.from_url(args.redis_url)
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)
    print(f"{'case':<40}{'limit /s':>10}{'achieved /s (median)':>24}{'ratio':>8}")
    for name, figures in results.items():
        ratio = figures["achieved_median"] / figures["limit"]
        print(f"{name:<40}{figures['limit']:>10.1f}{figures['achieved_median']:>24.1f}{ratio:>8.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
