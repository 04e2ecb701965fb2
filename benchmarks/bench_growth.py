"""Does a task's cost grow with the run? A chain of tasks that read their context, on the fleet.

    python benchmarks/bench_growth.py                          # N=50 and N=300, 3 rounds each
    python benchmarks/bench_growth.py --sizes 50,300 --rounds 5 --payload-kb 100 --json-out growth.json
    python benchmarks/bench_growth.py --against /work/wt-base  # the same, also on another checkout

Each task of a chain of N takes its context, reads the previous task's result (100 KB)
and returns 100 KB of its own, on the Redis queue with two ``graflow-worker`` processes on
the local Redis. Before durable runs, every task that ran elsewhere was shipped with every
earlier result, so the data moved grew with the square of N and the per-task time with N.
The goal (issue 10): ms/task at N=300 over ms/task at N=50 is at most 1.3.

Besides time, the harness counts the bytes of each envelope the driver writes (the
``payload`` field of the task stream, read back with ``XRANGE`` before a worker takes it is
not possible, so it is measured by wrapping the codec in this process): the median
envelope size at both sizes shows what travels per task.

``--against DIR`` runs the same measurement with ``DIR``'s graflow-core, graflow-redis and
graflow-worker on ``PYTHONPATH`` (e.g. a worktree at an earlier commit), for a before/after.
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
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("GRAFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _env(checkout: Path | None) -> dict[str, str]:
    environ = dict(os.environ)
    environ.pop("GRAFLOW_SECRET_KEY", None)
    if checkout is not None:
        paths = [str(checkout / d / "src") for d in ("graflow-core", "graflow-redis", "graflow-worker")]
        environ["PYTHONPATH"] = os.pathsep.join(paths)
    return environ


def measure(sizes: list[int], rounds: int, payload_kb: int) -> dict[str, Any]:
    """Runs in the measured interpreter: start two workers, time the chains, stop the workers."""
    import redis

    from graflow import task, workflow
    from graflow.core.context import TaskExecutionContext

    prefix = f"bench-growth-{uuid.uuid4().hex[:8]}"
    logs = Path(tempfile.mkdtemp(prefix="graflow-growth-"))
    command = [str(Path(sys.executable).with_name("graflow-worker"))]
    if not Path(command[0]).exists():
        command = [sys.executable, "-m", "graflow_worker"]
    workers = [
        subprocess.Popen(
            [*command, "--redis-url", REDIS_URL, "--key-prefix", prefix, "--worker-id", f"growth-{n}"],
            stdout=open(logs / f"w{n}.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            cwd=logs,
        )
        for n in range(2)
    ]
    sizes_seen: list[int] = []
    import graflow_redis.driver as driver_module

    # Count what the driver sends per task: wrap the function it pickles envelopes with
    # (``dumps_envelope`` since the codec; ``dumps`` in earlier versions).
    for name in ("dumps_envelope", "dumps"):
        original = getattr(driver_module, name, None)
        if original is not None:

            def counting(*args: Any, _original: Any = original, **kwargs: Any) -> bytes:
                payload: bytes = _original(*args, **kwargs)
                sizes_seen.append(len(payload))
                return payload

            setattr(driver_module, name, counting)
            break
    out: dict[str, Any] = {"graflow": __import__("graflow").__file__, "sizes": {}}
    try:
        client = redis.Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + 30
        while len([k for k in client.scan_iter(match=f"{prefix}:worker:*")]) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.1)
        for n in sizes:
            per_task: list[float] = []
            envelope_kb: list[float] = []
            for _ in range(rounds + 1):  # the first round warms up and is not counted
                with workflow(f"growth_{n}") as wf:
                    chain = []
                    for i in range(n):

                        @task(f"t{i}", inject_context=True)
                        def step(ctx: TaskExecutionContext, i: int = i, kb: int = payload_kb) -> str:
                            previous = ctx.get_result(f"t{i - 1}") if i else ""
                            return "x" * (kb * 1024) if previous is not None else ""

                        chain.append(step)
                    for a, b in zip(chain, chain[1:], strict=False):
                        a >> b
                    sizes_seen.clear()
                    started = time.perf_counter()
                    wf.execute(
                        queue_backend="redis",
                        channel_backend="redis",
                        config={"redis_url": REDIS_URL, "key_prefix": prefix},
                        max_steps=n + 1,
                    )
                    per_task.append((time.perf_counter() - started) / n * 1000)
                    if sizes_seen:
                        envelope_kb.append(statistics.median(sizes_seen) / 1024)
            per_task = per_task[1:]
            out["sizes"][str(n)] = {
                "ms_per_task": per_task,
                "median_ms_per_task": statistics.median(per_task),
                "median_envelope_kb": statistics.median(envelope_kb) if envelope_kb else None,
            }
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
        try:
            keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                redis.Redis.from_url(REDIS_URL).delete(*keys)
        except Exception:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50,300", help="chain lengths (default 50,300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per size (default 3)")
    parser.add_argument("--payload-kb", type=int, default=100, help="size of each result (default 100)")
    parser.add_argument(
        "--against", type=Path, help="also measure this checkout (graflow-* src on PYTHONPATH)"
    )
    parser.add_argument("--json-out", type=Path, help="write the raw figures here")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.measure:
        print(json.dumps(measure(sizes, args.rounds, args.payload_kb)))
        return 0
    sides = {"this checkout": None}
    if args.against is not None:
        sides[str(args.against)] = args.against
    results = {}
    for name, checkout in sides.items():
        done = subprocess.run(
            [sys.executable, __file__, "--measure", "--sizes", args.sizes, "--rounds", str(args.rounds),
             "--payload-kb", str(args.payload_kb)],
            env=_env(checkout), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-3000:]}")
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'side':<40} {'N':>5} {'ms/task':>9} {'envelope KB':>12}")
    for name, result in results.items():
        figures = result["sizes"]
        for n in sizes:
            f = figures[str(n)]
            kb = f["median_envelope_kb"]
            print(
                f"{name:<40} {n:>5} {f['median_ms_per_task']:>9.2f} {kb if kb is None else round(kb, 1)!s:>12}"
            )
        ratio = figures[str(sizes[-1])]["median_ms_per_task"] / figures[str(sizes[0])]["median_ms_per_task"]
        print(f"{name:<40} growth ms/task N={sizes[-1]} over N={sizes[0]}: {ratio:.2f} (goal <= 1.3)")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
