"""Parallel-group benchmarks: coordinator overhead, concurrency and process speed-up.

Runs against whichever ``graflow`` the interpreter imports. With ``--peer`` it also
runs itself under the published peer's interpreter (``peer_env.sh``) for the figures
the peer can produce (it has no MULTIPROCESSING backend) and prints both columns.

Measured, each as the median of ``--repeats`` samples (a fresh graph per sample, only
``execute()`` timed):

* ``threading_us_per_member`` -- a THREADING group of 1,000 no-op members: execute
  time divided by the member count (goal < 30 us). ``direct_us_per_member`` is the same
  group on DIRECT, for reading how much of it is the engine's own per-member work.
* ``sleep_group_s`` -- 8 members each sleeping 0.5 s on THREADING: wall time (goal < 0.7 s).
* ``cpu_direct_s`` / ``cpu_multiprocessing_s`` / ``cpu_speedup`` -- 200 members each
  burning ~30 ms of pure-Python CPU, on DIRECT and on MULTIPROCESSING (one pool process
  per core, its start-up included: every run starts its own pool), taken in turns: the
  speed-up (goal >= 1.7x on 2 cores). ``first_pool_start_s`` / ``pool_start_s`` (info):
  a MULTIPROCESSING group of no-op members, the first in the process (which also starts
  Python's fork server) and later ones. ``cpu_raw_pool_s`` / ``cpu_raw_speedup`` (info):
  the same work on a bare ``ProcessPoolExecutor`` started for the purpose, no Graflow,
  taken in the same turns: what this machine allows at the time of the run.

Usage::

    /work/venv/bin/python benchmarks/bench_groups.py              # ours, table on stdout
    /work/venv/bin/python benchmarks/bench_groups.py --peer       # plus the peer's column
    /work/venv/bin/python benchmarks/bench_groups.py --json       # one JSON object instead
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logging.disable(logging.CRITICAL)

HERE = Path(__file__).resolve().parent


#: Times an in-process member body ran; checked after each run, so an engine that stops
#: early (or skips members) cannot look fast.
_CALLS = [0]


def _noop() -> None:
    _CALLS[0] += 1


def _checked(bodies: list[Callable[[], Any]], run: Callable[[], float]) -> float:
    _CALLS[0] = 0
    elapsed = run()
    if _CALLS[0] != len(bodies):
        raise RuntimeError(f"{_CALLS[0]} of {len(bodies)} members ran")
    return elapsed


def _burn(iterations: int) -> int:
    """Pure-Python CPU work: no I/O, no GIL release."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def _calibrate(target_ms: float) -> int:
    """Iterations of :func:`_burn` that take about ``target_ms`` here."""
    probe = 200_000
    best = min(_timed(lambda: _burn(probe)) for _ in range(3))
    return max(1, int(probe * target_ms / 1000.0 / best))


def _raw_pool(iterations: int, members: int, cpus: int) -> None:
    """The machine's ceiling: the same work on a bare ``ProcessPoolExecutor``, no Graflow."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(cpus) as pool:
        list(pool.map(_burn, [iterations] * members))


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class _Api:
    """The few calls both implementations share, with a shim where they differ."""

    def __init__(self) -> None:
        from graflow.coordination.coordinator import CoordinationBackend
        from graflow.core.decorators import task
        from graflow.core.workflow import workflow

        try:
            from graflow.core.group import ParallelGroup
        except ImportError:  # the peer keeps it beside the tasks
            from graflow.core.task import ParallelGroup  # type: ignore[no-redef]

        self.backends = CoordinationBackend
        self.task = task
        self.workflow = workflow
        self.has_max_workers = "max_workers" in inspect.signature(ParallelGroup.with_execution).parameters
        self.has_multiprocessing = hasattr(CoordinationBackend, "MULTIPROCESSING")

    def group_run(self, bodies: list[Callable[[], Any]], backend: str, workers: int | None) -> float:
        """Build ``t0 | t1 | ...`` on ``backend`` and time its ``execute()``."""
        with self.workflow(f"bench_{backend}") as wf:
            tasks = [self.task(f"t{i}")(body) for i, body in enumerate(bodies)]
            group = tasks[0]
            for t in tasks[1:]:
                group = group | t
            kwargs: dict[str, Any] = {"backend": getattr(self.backends, backend)}
            if workers is not None:
                if self.has_max_workers:
                    kwargs["max_workers"] = workers
                else:
                    kwargs["backend_config"] = {"thread_count": workers}
            group.with_execution(**kwargs)
            return _timed(lambda: wf.execute(max_steps=10 * len(bodies) + 10))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import graflow

    api = _Api()
    out: dict[str, Any] = {"graflow": getattr(graflow, "__file__", "?"), "samples": {}}
    samples = out["samples"]
    n = args.members

    def overhead(backend: str) -> list[float]:
        bodies = [_noop] * n
        return [
            _checked(bodies, lambda: api.group_run(bodies, backend, None)) * 1e6 / n
            for _ in range(args.repeats)
        ]

    api.group_run([_noop] * n, "THREADING", None)  # warm-up: lazy imports, plugin loading
    samples["direct_us_per_member"] = overhead("DIRECT")
    samples["threading_us_per_member"] = overhead("THREADING")

    def sleeper() -> None:
        time.sleep(args.sleep_s)
        _CALLS[0] += 1

    sleepers = [sleeper] * args.sleep_members
    samples["sleep_group_s"] = [
        _checked(sleepers, lambda: api.group_run(sleepers, "THREADING", args.sleep_members))
        for _ in range(args.repeats)
    ]

    if api.has_multiprocessing and not args.skip_cpu:
        iterations = _calibrate(args.cpu_ms)

        def burn() -> int:
            return _burn(iterations)

        cpus = os.cpu_count() or 1
        # The first pool in a process also starts Python's fork server (info only).
        samples["first_pool_start_s"] = [api.group_run([_noop] * cpus, "MULTIPROCESSING", cpus)]
        samples["pool_start_s"] = [
            api.group_run([_noop] * cpus, "MULTIPROCESSING", cpus) for _ in range(args.repeats)
        ]
        direct, processes, raw = [], [], []
        for _ in range(args.cpu_repeats):  # interleaved, so a slow stretch hits all three
            direct.append(api.group_run([burn] * args.cpu_members, "DIRECT", None))
            processes.append(api.group_run([burn] * args.cpu_members, "MULTIPROCESSING", cpus))
            raw.append(_timed(lambda: _raw_pool(iterations, args.cpu_members, cpus)))
        samples["cpu_direct_s"] = direct
        samples["cpu_multiprocessing_s"] = processes
        samples["cpu_raw_pool_s"] = raw
        samples["cpu_member_ms"] = [t * 1000 / args.cpu_members for t in direct]
        out["cpus"] = cpus
    out["medians"] = {k: statistics.median(v) for k, v in samples.items()}
    medians = out["medians"]
    if "cpu_direct_s" in medians:
        medians["cpu_speedup"] = medians["cpu_direct_s"] / medians["cpu_multiprocessing_s"]
        medians["cpu_raw_speedup"] = medians["cpu_direct_s"] / medians["cpu_raw_pool_s"]
    return out


GOALS: dict[str, tuple[str, Callable[[float], bool] | None]] = {
    "threading_us_per_member": ("< 30 us", lambda v: v < 30),
    "direct_us_per_member": ("(info)", None),
    "sleep_group_s": ("< 0.7 s", lambda v: v < 0.7),
    "first_pool_start_s": ("(info)", None),
    "pool_start_s": ("(info)", None),
    "cpu_member_ms": ("(info) 20-50 ms", None),
    "cpu_direct_s": ("(info)", None),
    "cpu_multiprocessing_s": ("(info)", None),
    "cpu_speedup": (">= 1.7x", lambda v: v >= 1.7),
    "cpu_raw_pool_s": ("(info)", None),
    "cpu_raw_speedup": ("(info) ceiling", None),
}
LABELS = {
    "threading_us_per_member": "THREADING, 1,000 no-op members: us/member",
    "direct_us_per_member": "DIRECT, same group: us/member",
    "sleep_group_s": "THREADING, 8 x sleep(0.5): wall s",
    "first_pool_start_s": "first MULTIPROCESSING group in a process, no-op members: s",
    "pool_start_s": "later MULTIPROCESSING group, no-op members: s",
    "cpu_member_ms": "CPU member on DIRECT: ms",
    "cpu_direct_s": "200 CPU members, DIRECT: s",
    "cpu_multiprocessing_s": "200 CPU members, MULTIPROCESSING: s",
    "cpu_speedup": "MULTIPROCESSING speed-up over DIRECT",
    "cpu_raw_pool_s": "same work, bare ProcessPoolExecutor (no Graflow): s",
    "cpu_raw_speedup": "bare ProcessPoolExecutor speed-up over DIRECT",
}


def render(ours: dict[str, Any], peer: dict[str, Any] | None) -> str:
    head = ["metric", "ours", "goal", "met"] + (["peer 0.2.0"] if peer else [])
    rows = [head, ["---"] * len(head)]
    for key, label in LABELS.items():
        value = ours["medians"].get(key)
        if value is None:
            continue
        goal, check = GOALS[key]
        row = [label, f"{value:.3g}", goal, ("yes" if check(value) else "NO") if check else ""]
        if peer:
            theirs = peer.get("medians", {}).get(key)
            row.append("n/a" if theirs is None else f"{theirs:.3g}")
        rows.append(row)
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    note = f"\nours: {ours['graflow']} (cpus={ours.get('cpus', os.cpu_count())})"
    if peer:
        note += f"\npeer: {peer.get('graflow', peer.get('error', '?'))}"
    return "\n".join(lines) + note


def run_peer(args: argparse.Namespace) -> dict[str, Any]:
    try:
        found = subprocess.run(
            ["bash", str(HERE / "peer_env.sh")], capture_output=True, text=True, check=True
        )
        python = found.stdout.strip().splitlines()[-1]
        cmd = [python, str(Path(__file__).resolve()), "--json", "--skip-cpu", "--repeats", str(args.repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp", timeout=900)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        return json.loads(done.stdout)
    except Exception as exc:  # the peer column is optional
        return {"error": f"{type(exc).__name__}: {exc}"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="samples per metric (default 5)")
    parser.add_argument("--members", type=int, default=1000, help="no-op members (default 1000)")
    parser.add_argument("--sleep-members", type=int, default=8)
    parser.add_argument("--sleep-s", type=float, default=0.5)
    parser.add_argument("--cpu-members", type=int, default=200)
    parser.add_argument("--cpu-ms", type=float, default=30.0, help="CPU time per member (default 30)")
    parser.add_argument("--cpu-repeats", type=int, default=3, help="DIRECT/MULTIPROCESSING pairs (default 3)")
    parser.add_argument("--skip-cpu", action="store_true", help="leave out the MULTIPROCESSING figures")
    parser.add_argument("--peer", action="store_true", help="also run under the peer (graflow==0.2.0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real_stdout, sys.stdout = sys.stdout, sys.stderr  # a library that prints cannot spoil the output
    try:
        ours = measure(args)
        peer = run_peer(args) if args.peer else None
    finally:
        sys.stdout = real_stdout
    if args.json:
        print(json.dumps(ours))
    else:
        print(render(ours, peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
