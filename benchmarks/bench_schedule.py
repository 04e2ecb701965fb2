"""Schedules: how late a tick's run starts (the scheduler's firing jitter), two schedulers racing.

A schedule fires every second for ``--seconds``; two schedulers watch its store (Redis, or a
local state directory with ``--local``), as two workers started with ``--scheduler`` would.
Its workflow's one task writes ``time.time() - tick`` (the tick comes from the channel's
``graflow.schedule``) to a file: the lateness of that firing, from the tick to its task
starting, the workflow file's loading and the run's start included. Also counted: ticks
fired twice (must be 0) and ticks missed.

Usage::

    /work/venv/bin/python benchmarks/bench_schedule.py            # Redis at 127.0.0.1:6379, 30 s
    /work/venv/bin/python benchmarks/bench_schedule.py --local --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

FLOW = """
import time
from graflow import task, workflow

with workflow("tick") as tick:

    @task(inject_context=True)
    def note(ctx):
        fired = ctx.get_channel().get("graflow.schedule")
        with open({out!r}, "a") as f:
            f.write(f"{{fired['timestamp']}} {{time.time() - fired['timestamp']}}\\n")
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--local", action="store_true", help="a local state directory instead of Redis")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from graflow.schedule import Schedule, schedules_for
    from graflow.schedule.scheduler import Scheduler

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "lateness.txt"
        source = Path(folder) / "tick.py"
        source.write_text(FLOW.format(out=str(out)))
        prefix = f"bench-schedule-{uuid.uuid4().hex[:8]}"
        config = (
            {"state_dir": str(Path(folder) / "state")}
            if args.local
            else {"redis_url": REDIS_URL, "key_prefix": prefix}
        )
        schedules_for(config).add(Schedule("tick", str(source), every=1, queue="memory"))
        stop = threading.Event()
        schedulers = [Scheduler(config) for _ in range(2)]
        threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in schedulers]
        started = time.time()
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        for scheduler in schedulers:
            scheduler.close(wait=True)
        elapsed = time.time() - started
        rows = [line.split() for line in out.read_text().splitlines()]
        if not args.local:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
    ticks = Counter(tick for tick, _ in rows)
    lateness = sorted(float(late) for _, late in rows)
    result = {
        "store": "local" if args.local else "redis",
        "ticks_expected": int(elapsed) - 1,
        "runs": len(rows),
        "ticks_fired_twice": sum(1 for count in ticks.values() if count > 1),
        "lateness_p50_ms": round(statistics.median(lateness) * 1000, 1),
        "lateness_p99_ms": round(lateness[max(0, int(len(lateness) * 0.99) - 1)] * 1000, 1),
        "lateness_max_ms": round(lateness[-1] * 1000, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<20} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
