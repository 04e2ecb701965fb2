"""A 100,000-task run on the fleet: the driver's memory, Redis's memory, the time.

    python benchmarks/bench_scale.py                  # one group of 100,000 no-ops, 2 workers
    python benchmarks/bench_scale.py --tasks 10000    # a smaller one, to compare the rate

One parallel group of ``--tasks`` no-op tasks goes to two ``graflow-worker`` processes (4
slots each) on the local Redis (``CoordinationBackend.REDIS``). Reported: the time to build
the graph and to run it, the driver's peak RSS (``ru_maxrss``), Redis's ``used_memory``
above where it started (sampled every 0.5 s while the run goes, and once after it), and
what the run left in Redis, by kind of key, with the longest time to live among them.
Nothing here may grow faster than the run: the rate at 100,000 tasks is compared with the
rate at 10,000 (run both).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_distributed import noop, stop_processes, wait_for  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)

    import redis

    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.context import ExecutionContext
    from graflow.core.engine import WorkflowEngine
    from graflow.core.group import ParallelGroup
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import workflow
    from graflow_redis.queue import DistributedTaskQueue

    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
    script = Path(sys.executable).with_name("graflow-worker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "graflow_worker"]
    logs = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    workers = []
    for n in range(2):
        with open(logs / f"w{n}.log", "wb") as log:
            argv_worker = [
                *command,
                "--redis-url",
                args.redis_url,
                "--key-prefix",
                prefix,
                "--worker-id",
                f"s{n}",
            ]
            argv_worker += ["--max-concurrent-tasks", "4", "--log-level", "WARNING"]
            workers.append(subprocess.Popen(argv_worker, cwd=logs, stdout=log, stderr=subprocess.STDOUT))
    client = redis.Redis.from_url(args.redis_url)
    try:
        queue = DistributedTaskQueue(redis_url=args.redis_url, key_prefix=prefix)
        wait_for(lambda: len(queue.workers()) == 2, 60, "2 graflow workers")

        def memory() -> int:
            return int(client.info("memory")["used_memory"])

        start_memory = memory()

        began = time.perf_counter()
        with workflow("scale") as wf:
            members = [TaskWrapper(f"noop_{i}", noop) for i in range(args.tasks)]
            ParallelGroup(members, name="all").with_execution(backend=CoordinationBackend.REDIS)
        built = time.perf_counter()

        peak = [start_memory]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], memory())

        threading.Thread(target=sample, daemon=True).start()
        context = ExecutionContext.create(
            wf.graph,
            config={"redis_url": args.redis_url, "key_prefix": prefix},
            max_steps=args.tasks * 2 + 10,
        )
        WorkflowEngine().execute(context)
        ran = time.perf_counter()
        done.set()
        assert len(context.get_result("all")) == args.tasks, "every member must have a result"
        after = memory()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        left: Counter[str] = Counter()
        longest_ttl = 0
        for key in client.scan_iter(match=f"*{prefix}*", count=10_000):
            name = key.decode()
            kind = name.split(":")[1] if name.startswith(prefix) else name.split("}")[0] + "}"
            left[kind] += 1
            longest_ttl = max(longest_ttl, int(client.ttl(key)))
        print(f"tasks                          {args.tasks:,}")
        print(f"graph built in                 {built - began:.1f} s")
        print(
            f"run took                       {ran - built:.1f} s ({args.tasks / (ran - built):,.0f} tasks/s)"
        )
        print(f"driver peak RSS                {rss:.0f} MB")
        print(f"Redis used_memory, peak        +{(peak[0] - start_memory) / 1e6:.1f} MB")
        print(f"Redis used_memory, after       +{(after - start_memory) / 1e6:.1f} MB")
        print(f"keys left                      {dict(left)}; longest TTL {longest_ttl} s (-1: none)")
    finally:
        stop_processes(workers)
        for key in client.scan_iter(match=f"*{prefix}*", count=10_000):
            client.delete(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
