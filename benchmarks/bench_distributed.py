"""Distributed benchmark: ours, Celery 5 and graflow 0.2.0, each with 2 worker processes on the local Redis.

    python benchmarks/bench_distributed.py                       # all three sides, 2 passes x 3 rounds
    python benchmarks/bench_distributed.py --sides ours --rounds 5 --json-out dist.json

The harness runs each side in its own interpreter (ours: this one; Celery: the venv made by
``benchmarks/celery_env.sh``; the peer: ``benchmarks/peer_env.sh``) by calling this same file
with ``--side NAME``; that process starts the side's two workers, measures, stops them,
deletes its keys and prints one JSON object. Per side:

* **throughput**: one parallel group of ``--tasks`` no-op tasks (2,000), from submit to the
  last result; ours sends the group to the fleet with ``CoordinationBackend.REDIS``, Celery
  runs ``group(noop.s() ...)`` (prefork, concurrency 2, Redis broker and result backend),
  the peer runs the same group with its ``CoordinationBackend.REDIS``. Best and median of
  ``--rounds``.
* **latency**: one no-op task from ``execute`` (``delay``) to its result, ``--latency-samples``
  times; p50 and p99. Ours runs a one-task workflow with ``QueueBackend.REDIS``.
* **idle RSS**: resident memory of each worker process after the runs, idle for a second.

No-op task functions are defined in this file, which runs as ``__main__``: they travel to
the workers by value. Workers write their logs to a temporary directory. With
``GRAFLOW_SECRET_KEY`` set, our driver and workers (which inherit it) seal and verify
everything they exchange: the cost of signing is the difference with a run without it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIDES = ("ours", "celery", "peer")
#: Separate databases keep the peers' keys (Celery's "celery" list, result keys) away from ours.
CELERY_DB = 13
PEER_DB = 12


# --- helpers used by every side --------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def summary(
    throughputs: list[float], latencies: list[float], rss: list[float], **extra: Any
) -> dict[str, Any]:
    """What one side process reports: raw samples (the harness pools passes)."""
    return {"throughputs": throughputs, "latencies": latencies, "idle_rss_mb": rss, **extra}


def pooled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the reports of several passes of one side into its figures."""
    good = [p for p in parts if "error" not in p]
    if not good:
        return parts[-1]
    throughputs = [t for p in good for t in p["throughputs"]]
    latencies = [x for p in good for x in p["latencies"]]
    merged = {k: v for k, v in good[-1].items() if k not in ("throughputs", "latencies")}
    merged.update(
        throughput_best=max(throughputs),
        throughput_median=statistics.median(throughputs),
        throughputs=[round(t) for t in throughputs],
        latency_p50_ms=percentile(latencies, 50) * 1000 if latencies else None,
        latency_p99_ms=percentile(latencies, 99) * 1000 if latencies else None,
        latency_samples=len(latencies),
    )
    return merged


def noop() -> None:
    """The task every side runs."""
    return None


# --- ours -------------------------------------------------------------------------------------


def side_ours(args: argparse.Namespace) -> dict[str, Any]:
    import redis

    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.context import ExecutionContext
    from graflow.core.decorators import task
    from graflow.core.engine import WorkflowEngine
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import workflow
    from graflow.queue import QueueBackend
    from graflow_redis.queue import DistributedTaskQueue

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    script = Path(sys.executable).with_name("graflow-worker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "graflow_worker"]
    logs = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    workers = []
    for n in range(2):
        with open(logs / f"w{n}.log", "wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        *command,
                        "--redis-url",
                        args.redis_url,
                        "--key-prefix",
                        prefix,
                        "--worker-id",
                        f"bench-{n}",
                        "--max-concurrent-tasks",
                        str(args.ours_concurrency),
                        "--log-level",
                        "WARNING",
                    ],
                    cwd=logs,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    config = {"redis_url": args.redis_url, "key_prefix": prefix}
    client = redis.Redis.from_url(args.redis_url)
    try:
        queue = DistributedTaskQueue(redis_url=args.redis_url, key_prefix=prefix)
        wait_for(lambda: len(queue.workers()) == 2, 60, "2 graflow workers")
        engine = WorkflowEngine()

        def group_run() -> float:
            with workflow("throughput") as wf:
                if args.shape == "closure":
                    tasks = [task(f"n{i}")(lambda i=i: i) for i in range(args.tasks)]
                else:
                    tasks = [TaskWrapper(f"noop_{i}", noop) for i in range(args.tasks)]
                group = tasks[0] | tasks[1]
                for t in tasks[2:]:
                    group = group | t
                group.with_execution(backend=CoordinationBackend.REDIS)
            context = ExecutionContext.create(wf.graph, config=config)
            started = time.perf_counter()
            engine.execute(context)
            elapsed = time.perf_counter() - started
            assert len(context.results) == args.tasks + 1, "every member must have a result"
            if args.shape == "closure":
                assert all(context.get_result(f"n{i}") == i for i in range(args.tasks)), "wrong results"
            return args.tasks / elapsed

        if args.cold:
            cold = group_run()  # the first run of this driver and these workers
            return summary([cold], [], [round(rss_mb(w.pid), 1) for w in workers], cold=True)

        group_run()  # warm-up: imports, connections, by-value registration
        throughputs = [group_run() for _ in range(args.rounds)]

        with workflow("latency") as wf:
            TaskWrapper("noop", noop)
        latencies = []
        for i in range(args.latency_samples + 10):
            context = ExecutionContext.create(
                wf.graph, queue_backend=QueueBackend.REDIS, channel_backend="memory", config=config
            )
            started = time.perf_counter()
            engine.execute(context)
            if i >= 10:  # the first few pay for connections and imports
                latencies.append(time.perf_counter() - started)
            context.queue.close()
        time.sleep(1.0)
        rss = [round(rss_mb(w.pid), 1) for w in workers]
        processed = {w["worker_id"]: w.get("tasks_processed") for w in queue.workers()}
        signing = f"{queue.sealer.count} key(s)" if queue.sealer is not None else "off"
        return summary(
            throughputs,
            latencies,
            rss,
            processed=processed,
            concurrency=args.ours_concurrency,
            signing=signing,
        )
    finally:
        stop_processes(workers)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


# --- Celery ----------------------------------------------------------------------------------

_CELERY_APP = """
import os
from celery import Celery

app = Celery("graflow_bench", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(broker_connection_retry_on_startup=True, result_expires=600, worker_hijack_root_logger=False)


@app.task
def noop():
    return None


@app.task
def echo(i):
    return i
"""


def side_celery(args: argparse.Namespace) -> dict[str, Any]:
    import celery
    import redis

    url = f"{args.redis_url.rsplit('/', 1)[0]}/{CELERY_DB}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    (workdir / "graflow_bench_celery.py").write_text(_CELERY_APP)
    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(workdir)}
    os.environ["BENCH_REDIS_URL"] = url
    sys.path.insert(0, str(workdir))
    import graflow_bench_celery as tasks  # type: ignore[import-not-found]

    client = redis.Redis.from_url(url)
    client.flushdb()
    with open(workdir / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "graflow_bench_celery",
                "worker",
                "-P",
                "prefork",
                "-c",
                "2",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                "bench@%h",
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        from celery import group

        def group_run() -> float:
            if args.shape == "closure":  # Celery's form of a task over its index: a parameter
                signatures = [tasks.echo.s(i) for i in range(args.tasks)]
            else:
                signatures = [tasks.noop.s() for _ in range(args.tasks)]
            started = time.perf_counter()
            result = group(signatures).apply_async()
            values = result.get(timeout=600)
            elapsed = time.perf_counter() - started
            assert len(values) == args.tasks
            if args.shape == "closure":
                assert values == list(range(args.tasks)), "wrong results"
            result.forget()
            return args.tasks / elapsed

        if args.cold:
            cold = group_run()
            return summary([cold], [], [round(rss_mb(worker.pid), 1)], version=celery.__version__, cold=True)
        tasks.noop.delay().get(timeout=60)
        group_run()
        throughputs = [group_run() for _ in range(args.rounds)]
        latencies = []
        for i in range(args.latency_samples + 10):
            started = time.perf_counter()
            tasks.noop.delay().get(timeout=30)
            if i >= 10:
                latencies.append(time.perf_counter() - started)
        time.sleep(1.0)
        pool = children(worker.pid)
        rss = [round(rss_mb(worker.pid), 1)] + [round(rss_mb(p), 1) for p in pool]
        return summary(throughputs, latencies, rss, version=celery.__version__, processes=1 + len(pool))
    finally:
        stop_processes([worker])
        client.flushdb()


# --- graflow 0.2.0 ---------------------------------------------------------------------------


def side_peer(args: argparse.Namespace) -> dict[str, Any]:
    import importlib.metadata
    import logging

    import redis

    logging.disable(logging.CRITICAL)
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.decorators import task
    from graflow.core.workflow import workflow

    host, port = args.redis_url.split("://", 1)[1].rsplit("/", 1)[0].split(":")
    prefix = f"bench-peer-{uuid.uuid4().hex[:8]}"
    backend_config = {"host": host, "port": int(port), "db": PEER_DB, "key_prefix": prefix}
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    workers = []
    for n in range(2):
        with open(workdir / f"w{n}.log", "wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "graflow.worker.main",
                        "--worker-id",
                        f"peer-{n}",
                        "--redis-host",
                        host,
                        "--redis-port",
                        port,
                        "--redis-db",
                        str(PEER_DB),
                        "--redis-key-prefix",
                        prefix,
                        "--max-concurrent-tasks",
                        "4",
                    ],
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    client = redis.Redis(host=host, port=int(port), db=PEER_DB)
    try:
        time.sleep(2.0)  # the peer's workers have no readiness signal; give them time to connect

        def group_run(size: int) -> float:
            with workflow(f"peer-{uuid.uuid4().hex[:6]}") as wf:
                if args.shape == "closure":
                    members = [task(f"n{i}")(lambda i=i: i) for i in range(size)]
                else:
                    members = [task(f"noop_{i}")(noop) for i in range(size)]
                group = members[0]
                for member in members[1:]:
                    group = group | member
                if size == 1:
                    group = members[0] | task("noop_pad")(noop)
                group.with_execution(backend=CoordinationBackend.REDIS, backend_config=backend_config)
            started = time.perf_counter()
            wf.execute(max_steps=size * 4 + 10)
            return time.perf_counter() - started

        if args.cold:
            cold = args.tasks / group_run(args.tasks)
            return summary([cold], [], [round(rss_mb(w.pid), 1) for w in workers], cold=True)
        group_run(10)
        throughputs = [args.tasks / group_run(args.tasks) for _ in range(args.rounds)]
        samples = min(args.latency_samples, 50)
        latencies = [group_run(1) for _ in range(samples)]
        time.sleep(1.0)
        rss = [round(rss_mb(w.pid), 1) for w in workers]
        return summary(
            throughputs,
            latencies,
            rss,
            version=importlib.metadata.version("graflow"),
            note="latency: a 2-member REDIS group (the peer ships only group members to workers)",
        )
    finally:
        stop_processes(workers)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


# --- harness ----------------------------------------------------------------------------------


def interpreter(side: str) -> str:
    if side == "ours":
        return sys.executable
    script = {"celery": "celery_env.sh", "peer": "peer_env.sh"}[side]
    done = subprocess.run(["bash", str(HERE / script)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-2000:]}")
    python = done.stdout.strip().splitlines()[-1]
    if side == "peer" and subprocess.run([python, "-c", "import redis"], capture_output=True).returncode:
        # The peer's distributed backend needs redis-py, which its base install leaves out.
        subprocess.run([python, "-m", "pip", "install", "--quiet", "redis"], check=True, timeout=600)
    return python


def run_side(side: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        python = interpreter(side)
    except Exception as exc:
        return {"error": str(exc)}
    command = [
        python,
        str(Path(__file__).resolve()),
        "--side",
        side,
        "--tasks",
        str(args.tasks),
        "--rounds",
        str(args.rounds),
        "--latency-samples",
        str(args.latency_samples),
        "--redis-url",
        args.redis_url,
        "--ours-concurrency",
        str(args.ours_concurrency),
        "--shape",
        args.shape,
        *(["--cold"] if args.cold else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=tempfile.gettempdir())
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}:\n{done.stderr[-3000:]}"}
    return json.loads(lines[-1])


def fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    names = [s for s in SIDES if s in results]
    get = {s: (lambda key, s=s: results[s].get(key)) for s in names}
    rows = [
        ("throughput, best (tasks/s)", "throughput_best", ",.0f"),
        ("throughput, median (tasks/s)", "throughput_median", ",.0f"),
        ("latency p50 (ms)", "latency_p50_ms", ".2f"),
        ("latency p99 (ms)", "latency_p99_ms", ".2f"),
    ]
    lines = [
        f"{args.tasks} {'closure' if args.shape == 'closure' else 'no-op'} tasks in one group; "
        f"{args.passes} passes x {'1 cold run' if args.cold else f'{args.rounds} rounds'}; "
        "2 worker processes per side; load average at the end: "
        + " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "",
    ]
    header = f"{'metric':32}" + "".join(f"{n:>14}" for n in names)
    lines += [header, "-" * len(header)]
    for label, key, spec in rows:
        lines.append(f"{label:32}" + "".join(f"{fmt(get[n](key), spec):>14}" for n in names))
    rss = "".join(
        f"{'/'.join(f'{v:.0f}' for v in results[n].get('idle_rss_mb') or []) or '—':>14}" for n in names
    )
    lines.append(f"{'idle worker RSS (MB, per process)':32}{rss}")
    for n in names:
        if "error" in results[n]:
            lines.append(f"\n{n} failed: {results[n]['error']}")
    ours = results.get("ours", {})
    celery = results.get("celery", {})
    peer = results.get("peer", {})
    if "signing" in ours:
        lines.append(f"{'signing (ours)':32}{ours['signing']:>14}")
    lines.append("")
    if ours.get("throughput_best") and celery.get("throughput_best"):
        ratio = ours["throughput_best"] / celery["throughput_best"]
        goal = 5 if args.shape == "closure" and not args.cold else 3
        lines.append(
            f"throughput ours/celery: {ratio:.2f}x (goal >= {goal}x: {'met' if ratio >= goal else 'MISSED'})"
        )
    if ours.get("throughput_best") and peer.get("throughput_best"):
        lines.append(f"throughput ours/peer 0.2.0: {ours['throughput_best'] / peer['throughput_best']:.2f}x")
    if ours.get("latency_p50_ms") is not None:
        p50 = ours["latency_p50_ms"]
        lines.append(f"latency p50 ours: {p50:.2f} ms (goal < 5 ms: {'met' if p50 < 5 else 'MISSED'})")
    if ours.get("idle_rss_mb"):
        top = max(ours["idle_rss_mb"])
        lines.append(f"idle worker RSS ours: {top:.1f} MB (goal < 60 MB: {'met' if top < 60 else 'MISSED'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated: ours,celery,peer")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="group runs per side and pass")
    parser.add_argument("--passes", type=int, default=2, help="runs of each side, in alternating order")
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--ours-concurrency", type=int, default=4, help="--max-concurrent-tasks of our workers"
    )
    parser.add_argument(
        "--shape",
        choices=("noop", "closure"),
        default="noop",
        help="noop: a module-level no-op; closure: task(f'n{i}')(lambda i=i: i), results checked "
        "(Celery: a task returning its parameter)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="measure only the first group run of fresh workers (no warm-up)"
    )
    parser.add_argument("--json-out", help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.side:
        real_stdout = sys.stdout
        sys.stdout = sys.stderr  # keep stdout for the one JSON line
        result = {"ours": side_ours, "celery": side_celery, "peer": side_peer}[args.side](args)
        real_stdout.write(json.dumps(result) + "\n")
        return 0
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    parts: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for n in range(args.passes):
        # Alternate the order, so a slow stretch of a shared machine hits every side.
        for side in sides if n % 2 == 0 else reversed(sides):
            sys.stderr.write(f"pass {n + 1}/{args.passes}: {side} ...\n")
            parts[side].append(run_side(side, args))
    results = {side: pooled(parts[side]) for side in sides}
    print(report(results, args))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
