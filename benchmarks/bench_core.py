"""Core-engine micro-benchmarks, runnable against *any* importable ``graflow``.

The same file runs under our dev interpreter and under the peer venv
(``graflow==0.2.0`` from PyPI, see ``peer_env.sh``); ``run_core.py`` drives both
and compares. Because the two share the import name ``graflow`` they can never
be loaded in one process, so this script only touches the public API both
expose: ``graflow.core.decorators.task``, ``graflow.core.workflow.workflow``,
``>>`` and ``WorkflowContext.execute``.

Measured (every figure is a list of raw samples plus its median, so the driver
can pool samples from interleaved runs):

* ``chain_exec_us_per_task`` -- per-task engine overhead: a chain of N no-op
  tasks (default 5,000) is built, then only ``execute()`` is timed; the time is
  divided by N. A fresh graph is built for every sample.
* ``chain_build_us_per_task`` -- informational: building that chain (task
  definition plus ``>>``), divided by N.
* ``small_exec_ms`` -- fixed cost of one small run: ``a >> b >> c`` built once,
  ``execute()`` timed many times.
* ``small_build_exec_ms`` -- the same, but defining the workflow, the three
  tasks and the edges is inside the timed region, every time.
* ``small_first_exec_ms`` -- informational: the very first ``execute()`` in the
  process (one sample per process: lazy imports and caches included).
* ``import_ms`` -- wall time of ``python -c "import graflow"`` in a fresh
  subprocess; ``python_startup_ms`` (``python -c pass``) is the baseline, for
  reading how much of it is interpreter start-up.

Fairness rules, identical for both implementations:

* ``logging.disable(logging.CRITICAL)`` before ``graflow`` is imported, so
  neither pays for formatting/emitting log records (both may log per task).
* ``sys.stdout`` is redirected to ``sys.stderr`` while measuring, so a library
  that prints cannot corrupt the JSON result on stdout.
* Every task runs the same function, which bumps a counter; after every run the
  counter is checked, so an engine that silently stops early (the peer's
  ``max_steps`` does) cannot look fast.
* ``gc.collect()`` before each timed region; the collector stays enabled.
* Everything runs with an empty temporary directory as the working directory:
  the peer creates ``feedback_data/`` (its human-in-the-loop store) in the cwd
  on every ``execute()``, and that must not litter the repository; it also
  keeps the caller's cwd from shadowing what ``import graflow`` finds.

Output: one JSON object on stdout. Sections that fail record a traceback under
``errors`` and the process exits 1, but the other sections still report.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import itertools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

# Silence logging before anything can import graflow (see module docstring).
logging.disable(logging.CRITICAL)

#: Times every task body ran; checked after each run (see module docstring).
_CALLS = [0]


def _noop() -> None:
    """The body of every benchmark task: as close to nothing as can be checked."""
    _CALLS[0] += 1


def _median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


# --------------------------------------------------------------------------- #
# API shims. Each adapts a detail in which the two implementations may differ, #
# without changing the workload; every one that fires is listed in "shims".   #
# --------------------------------------------------------------------------- #


class Api:
    """The shared public API, resolved once, with the shims that were needed."""

    def __init__(self) -> None:
        from graflow.core.decorators import task
        from graflow.core.workflow import workflow

        self.task: Callable[..., Any] = task
        self.workflow: Callable[..., Any] = workflow
        self.shims: list[str] = []
        # Both known implementations accept ``execute(max_steps=...)``; the peer's
        # default (10,000) silently truncates long chains, so we pass one that is
        # large enough. If a build lacks the keyword, call execute() bare.
        with workflow("probe") as wf:
            params = inspect.signature(wf.execute).parameters
        self._pass_max_steps = "max_steps" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        )
        if not self._pass_max_steps:
            self.shims.append("execute() has no max_steps: called without it")

    def define(self, task_id: str) -> Any:
        """``@task("id")`` applied to the shared no-op body."""
        return self.task(task_id)(_noop)

    def execute(self, wf: Any, n_tasks: int) -> None:
        """Run ``wf`` and check every task ran exactly once."""
        before = _CALLS[0]
        if self._pass_max_steps:
            wf.execute(max_steps=2 * n_tasks + 100)
        else:
            wf.execute()
        ran = _CALLS[0] - before
        if ran != n_tasks:
            raise RuntimeError(f"expected {n_tasks} task runs, got {ran}")


def link_chain(tasks: list[Any]) -> None:
    """Connect ``tasks`` in sequence with ``>>``, one pair at a time.

    ``t0 >> t1 >> ... >> tN`` folds left and both implementations copy the
    growing chain object at every step (quadratic build for N=5,000); linking
    pairwise (``t0 >> t1``, ``t1 >> t2``, ...) yields exactly the same edges
    and graph in linear time. Build time is not the headline figure anyway.
    """
    for left, right in itertools.pairwise(tasks):
        left >> right


# --------------------------------------------------------------------------- #
# Benchmarks                                                                   #
# --------------------------------------------------------------------------- #


@contextlib.contextmanager
def _working_dir(path: str) -> Iterator[None]:
    """``contextlib.chdir`` (3.11+), spelled out so the script also runs on 3.10."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _timed_region() -> Iterator[None]:
    gc.collect()
    yield


def bench_chain(api: Api, n: int, repeats: int) -> dict[str, list[float]]:
    """Per-task overhead: build an N-task chain (untimed for the headline), execute (timed)."""
    exec_us: list[float] = []
    build_us: list[float] = []
    for rep in range(repeats):
        with _timed_region():
            t0 = time.perf_counter()
            with api.workflow(f"chain{rep}") as wf:
                tasks = [api.define(f"t{i}") for i in range(n)]
                link_chain(tasks)
                t1 = time.perf_counter()
                gc.collect()
                t2 = time.perf_counter()
                api.execute(wf, n)
                t3 = time.perf_counter()
        build_us.append((t1 - t0) * 1e6 / n)
        exec_us.append((t3 - t2) * 1e6 / n)
    return {"chain_exec_us_per_task": exec_us, "chain_build_us_per_task": build_us}


def bench_small(api: Api, repeats: int) -> dict[str, list[float]]:
    """Fixed cost of a 3-task run, execute-only and build+execute."""
    exec_ms: list[float] = []
    with api.workflow("small") as wf:
        a, b, c = api.define("a"), api.define("b"), api.define("c")
        a >> b >> c
        t0 = time.perf_counter()
        api.execute(wf, 3)
        first = [(time.perf_counter() - t0) * 1e3]
        with _timed_region():
            for _ in range(repeats):
                t0 = time.perf_counter()
                api.execute(wf, 3)
                exec_ms.append((time.perf_counter() - t0) * 1e3)

    build_exec_ms: list[float] = []
    with _timed_region():
        for _ in range(repeats):
            t0 = time.perf_counter()
            with api.workflow("small_be") as wf2:
                a, b, c = api.define("a"), api.define("b"), api.define("c")
                a >> b >> c
                api.execute(wf2, 3)
            build_exec_ms.append((time.perf_counter() - t0) * 1e3)
    return {"small_first_exec_ms": first, "small_exec_ms": exec_ms, "small_build_exec_ms": build_exec_ms}


def bench_import(runs: int) -> dict[str, list[float]]:
    """Wall time of ``python -c "import graflow"`` vs ``python -c pass``, alternating.

    Runs in the current (temporary, empty) directory; see the module docstring.
    """
    import_ms: list[float] = []
    startup_ms: list[float] = []
    for _ in range(runs):
        for code, sink in (("import graflow", import_ms), ("pass", startup_ms)):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            elapsed = (time.perf_counter() - t0) * 1e3
            if proc.returncode != 0:
                raise RuntimeError(f"`python -c {code!r}` failed:\n{proc.stderr.strip()}")
            sink.append(elapsed)
    return {"import_ms": import_ms, "python_startup_ms": startup_ms}


# --------------------------------------------------------------------------- #
# Driver                                                                       #
# --------------------------------------------------------------------------- #


def describe_graflow() -> dict[str, Any]:
    """Where ``graflow`` comes from and which version it is (either distribution name)."""
    import importlib.metadata

    import graflow

    version = getattr(graflow, "__version__", None)
    for dist in ("graflow-core", "graflow"):
        if version is not None:
            break
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            version = f"{dist} {importlib.metadata.version(dist)}"
    file = getattr(graflow, "__file__", None) or str(list(getattr(graflow, "__path__", [])))
    return {"graflow_file": file, "graflow_version": version}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chain-n", type=int, default=5000, help="tasks in the chain (default 5000)")
    parser.add_argument("--chain-repeats", type=int, default=5, help="chain samples (default 5)")
    parser.add_argument("--small-repeats", type=int, default=300, help="small-run samples (default 300)")
    parser.add_argument("--import-runs", type=int, default=10, help="import subprocesses (default 10)")
    parser.add_argument(
        "--only",
        default="import,small,chain",
        help="comma-separated sections to run: import, small, chain (default all)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    result: dict[str, Any] = {
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "pid": os.getpid(),
        "isolation": "logging.disable(CRITICAL) before import; stdout -> stderr; cwd = empty temp dir",
        "params": {
            "chain_n": args.chain_n,
            "chain_repeats": args.chain_repeats,
            "small_repeats": args.small_repeats,
            "import_runs": args.import_runs,
        },
        "shims": [],
        "samples": {},
        "errors": {},
    }
    samples: dict[str, list[float]] = result["samples"]
    real_stdout = sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="graflow-bench-") as workdir,
        _working_dir(workdir),
        contextlib.redirect_stdout(sys.stderr),
    ):
        if "import" in sections:
            try:
                samples.update(bench_import(args.import_runs))
            except Exception:
                result["errors"]["import"] = traceback.format_exc()
        api: Api | None = None
        try:
            result.update(describe_graflow())
            api = Api()
            result["shims"] = api.shims
        except Exception:
            result["errors"]["api"] = traceback.format_exc()
        if api is not None:
            # "small" first: it also warms lazy imports before the chain is timed.
            runs: list[tuple[str, Callable[[], dict[str, list[float]]]]] = [
                ("small", lambda: bench_small(api, args.small_repeats)),
                ("chain", lambda: bench_chain(api, args.chain_n, args.chain_repeats)),
            ]
            for name, run in runs:
                if name not in sections:
                    continue
                try:
                    samples.update(run())
                except Exception:
                    result["errors"][name] = traceback.format_exc()
    result["medians"] = {key: _median(values) for key, values in samples.items()}
    json.dump(result, real_stdout, indent=2)
    real_stdout.write("\n")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
