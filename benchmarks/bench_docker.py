"""Docker handler overhead: from ``execute_task`` being called to the result being back.

Runs a no-op task N times (default 20) through

* ``DockerTaskHandler(image)`` -- one container per task (the default);
* ``DockerTaskHandler(image, reuse=True)`` -- warm containers;

and, as the yardstick, a bare ``docker run --rm IMAGE python3 -c pass`` (the CLI, so
the figure is what a person would see), plus one whole ``engine.execute`` of a
one-task workflow per mode (informational: the engine's share is microseconds).

Each handler runs its first task untimed: that one pays the once-per-handler image
check and Python version probe (and, with ``reuse=True``, the container start).
The first-task time is reported separately.

    python benchmarks/bench_docker.py                    # image graflow-test-python:3.11
    python benchmarks/bench_docker.py --runs 50 --image python:3.11-slim --json-out docker.json

Needs a Docker engine and the image (``.ci/docker-engine.sh`` provides both here).
Prints a table, then one JSON line with the raw samples.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

GOALS = {"one container per task": 1.0, "reuse=True (warm)": 0.1}


def noop() -> None:
    """The task: nothing, so every millisecond measured is overhead."""


def sample(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def bench_handler(image: str, runs: int, reuse: bool) -> dict[str, Any]:
    from graflow.core.context import ExecutionContext
    from graflow.core.engine import WorkflowEngine
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import workflow
    from graflow_docker import DockerTaskHandler

    with workflow(f"bench_docker_{reuse}") as wf:
        task = TaskWrapper("noop", noop, handler_type="docker")
    with DockerTaskHandler(image=image, reuse=reuse) as handler:
        context = ExecutionContext.create(wf.graph)
        first = sample(lambda: handler.execute_task(task, context), 1)[0]
        times = sample(lambda: handler.execute_task(task, context), runs)
        engine = WorkflowEngine()
        engine.register_handler("docker", handler)
        whole = sample(lambda: engine.execute(ExecutionContext.create(wf.graph)), 1)[0]
    return {"first_task": first, "samples": times, "engine_execute_one_task": whole, **summary(times)}


def bench_docker_run(image: str, runs: int) -> dict[str, Any]:
    command = ["docker", "run", "--rm", image, "python3", "-c", "pass"]
    subprocess.run(command, check=True, capture_output=True)  # warm the image cache
    times = sample(lambda: subprocess.run(command, check=True, capture_output=True), runs)
    return {"samples": times, **summary(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="graflow-test-python:3.11")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json-out", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)

    results = {
        "bare `docker run --rm IMAGE python3 -c pass`": bench_docker_run(args.image, args.runs),
        "one container per task": bench_handler(args.image, args.runs, reuse=False),
        "reuse=True (warm)": bench_handler(args.image, args.runs, reuse=True),
    }
    print(f"Docker handler, no-op task, {args.runs} runs, image {args.image}")
    print(f"| {'mode':<48} | {'p50':>9} | {'p90':>9} | {'min':>9} | {'first task':>10} | goal")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 12}|------")
    for name, figures in results.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"p50 < {_ms(goal)}: {'met' if figures['p50'] < goal else 'MISSED'}"
        first = _ms(figures["first_task"]) if "first_task" in figures else "-"
        print(
            f"| {name:<48} | {_ms(figures['p50']):>9} | {_ms(figures['p90']):>9} | "
            f"{_ms(figures['min']):>9} | {first:>10} | {verdict}"
        )
    payload = {"image": args.image, "runs": args.runs, "results": results}
    if args.json_out:
        with open(args.json_out, "w") as out:
            json.dump(payload, out, indent=2)
    print(json.dumps(payload))
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
