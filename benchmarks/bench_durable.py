"""Durable runs: what the local state store costs a task, and how fast a stopped run comes back.

Measured, each figure the median of ``--repeats`` samples:

* ``per_task_us`` -- a chain of ``--tasks`` (2,000) tasks, each taking a parameter filled
  from the channel (``limit``) and returning a small dict. The graph is built first and not
  timed; only ``execute()`` is timed, divided by the number of tasks. Durable (the local
  store, a fresh state directory per sample) and not durable, taken in turns. Writing the
  plan (the whole graph, by value) once at the start is part of the durable figure;
  ``plan_write_ms`` shows it apart.
* ``resume_*`` -- a durable run of ``--completed`` (10,000) tasks plus one that failed: its
  history holds 10,000 completed steps. Before every sample its state directory is restored
  from a pristine copy, so every sample resumes the same unfinished run. Timed from the
  call until the first task that runs starts (that task writes ``time.time()`` to a file):
  in process (``resume_context`` + ``WorkflowEngine().execute``), split into building the
  context (open the store, take the lease, load and unpickle plan, completions, results)
  and replaying the history; and as ``python -m graflow resume RUN_ID --state-dir DIR`` in a
  new process (interpreter start-up and imports included; ``cli_startup_ms`` is
  ``python -m graflow --version`` for reading that part). Goal: under 1 s.
* ``fsyncs_per_task`` -- ``strace -f -c -e trace=fsync,fdatasync`` around a process that runs
  the chain durable, minus one that runs it not durable, divided by the number of tasks:
  with ``state_sync`` ``normal`` (the default) and ``full``. Skipped when strace is missing.

Usage::

    python benchmarks/bench_durable.py                 # a table on stdout
    python benchmarks/bench_durable.py --json          # one JSON object: raw samples and medians
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logging.disable(logging.CRITICAL)

from graflow import chain  # noqa: E402
from graflow.core.engine import WorkflowEngine  # noqa: E402
from graflow.core.resume import resume_context  # noqa: E402
from graflow.core.task import TaskWrapper  # noqa: E402
from graflow.core.workflow import WorkflowContext, workflow  # noqa: E402
from graflow.state.local import LocalStore  # noqa: E402
from graflow.state.store import RunPlan  # noqa: E402

#: The resumed run's first task writes the time it started here (the variable names the file).
MARK_VARIABLE = "GRAFLOW_BENCH_FIRST_TASK_FILE"


def _step(index: int) -> Callable[[int], dict[str, int]]:
    def step(limit: int) -> dict[str, int]:
        return {"index": index, "limit": limit}

    return step


def _left_for_the_resume(limit: int) -> dict[str, Any]:
    """Fails in the run that is recorded; in a resumed one, notes when it started."""
    mark = os.environ.get(MARK_VARIABLE)
    if not mark:
        raise RuntimeError("left for the resume")
    Path(mark).write_text(repr(time.time()))
    return {"limit": limit}


def chain_workflow(tasks: int, *, last: Callable[..., Any] | None = None) -> WorkflowContext:
    with workflow("bench") as wf:
        steps = [TaskWrapper(f"t{i}", _step(i)) for i in range(tasks)]
        if last is not None:
            steps.append(TaskWrapper("last", last))
        chain(*steps)
    return wf


def _execute(wf: WorkflowContext, **options: Any) -> float:
    gc.collect()
    started = time.perf_counter()
    wf.execute(max_steps=1_000_000, initial_channel={"limit": 10}, **options)
    return time.perf_counter() - started


# --- per task ---------------------------------------------------------------------------------


def per_task(tasks: int, repeats: int, scratch: Path) -> dict[str, Any]:
    plain: list[float] = []
    durable: list[float] = []
    for sample in range(repeats + 1):  # the first pair warms up and is dropped
        timings = (
            _execute(chain_workflow(tasks)) / tasks * 1e6,
            _execute(chain_workflow(tasks), durable=True, config={"state_dir": str(scratch / f"d{sample}")})
            / tasks
            * 1e6,
        )
        if sample:
            plain.append(timings[0])
            durable.append(timings[1])
    plan_write = []
    for sample in range(repeats):
        wf = chain_workflow(tasks)
        context = wf.create_context(durable=True, config={"state_dir": str(scratch / f"p{sample}")})
        plan = RunPlan(context.session_id, "bench", context.graph, context.start_nodes, 10_000, {})
        started = time.perf_counter()
        context.store.start_run(plan).close()
        plan_write.append((time.perf_counter() - started) * 1e3)
    return {
        "tasks": tasks,
        "plain_us": plain,
        "durable_us": durable,
        "plain_us_median": statistics.median(plain),
        "durable_us_median": statistics.median(durable),
        "extra_us_median": statistics.median(d - p for d, p in zip(durable, plain, strict=True)),
        "plan_write_ms": plan_write,
        "plan_write_ms_median": statistics.median(plan_write),
    }


# --- resume -------------------------------------------------------------------------------------


def _recorded_run(completed: int, folder: Path) -> str:
    """A failed durable run whose history holds ``completed`` steps; its id."""
    wf = chain_workflow(completed, last=_left_for_the_resume)
    os.environ.pop(MARK_VARIABLE, None)
    try:
        wf.execute(
            max_steps=1_000_000,
            initial_channel={"limit": 10},
            durable=True,
            config={"state_dir": str(folder)},
        )
    except RuntimeError:
        pass
    store = LocalStore(folder)
    [info] = store.runs()
    store.close()
    assert info.tasks_done == completed, info
    return info.run_id


def resume(completed: int, repeats: int, scratch: Path) -> dict[str, Any]:
    pristine = scratch / "pristine"
    run_id = _recorded_run(completed, pristine)
    mark = scratch / "first-task-started"
    os.environ[MARK_VARIABLE] = str(mark)

    def fresh_copy(name: str) -> Path:
        target = scratch / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(pristine, target)
        mark.unlink(missing_ok=True)
        return target

    context_s, replay_s, in_process_s, cli_s, load_s = [], [], [], [], []
    for sample in range(repeats):
        store = LocalStore(fresh_copy(f"load-{sample}"))
        gc.collect()
        started = time.time()
        store.load(run_id)
        load_s.append(time.time() - started)
        store.close()

        folder = fresh_copy(f"in-process-{sample}")
        gc.collect()
        started = time.time()
        context = resume_context(run_id, {"state_dir": str(folder)})
        built = time.time()
        WorkflowEngine().execute(context)
        first = float(mark.read_text())
        context_s.append(built - started)
        replay_s.append(first - built)
        in_process_s.append(first - started)
        del context  # the next timed region starts with the heap it found

        folder = fresh_copy(f"cli-{sample}")
        gc.collect()
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "graflow", "resume", run_id, "--state-dir", str(folder)],
            capture_output=True,
            text=True,
            cwd=scratch,
        )
        assert done.returncode == 0, done.stderr
        cli_s.append(float(mark.read_text()) - started)
    startup = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "graflow", "--version"], capture_output=True, check=True)
        startup.append((time.perf_counter() - started) * 1e3)
    return {
        "completed_steps": completed,
        "context_s": context_s,
        "replay_s": replay_s,
        "in_process_s": in_process_s,
        "cli_s": cli_s,
        "load_s": load_s,
        "cli_startup_ms": startup,
        **{
            f"{name}_median": statistics.median(values)
            for name, values in (
                ("context_s", context_s),
                ("replay_s", replay_s),
                ("in_process_s", in_process_s),
                ("cli_s", cli_s),
                ("load_s", load_s),
                ("cli_startup_ms", startup),
            )
        },
    }


# --- fsyncs ----------------------------------------------------------------------------------------


def _syncs(tasks: int, mode: str, scratch: Path) -> int:
    """fsync + fdatasync calls of a process that runs the chain once (``mode``: plain, normal, full)."""
    report = scratch / f"strace-{mode}.txt"
    subprocess.run(
        ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(report)]
        + [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--tasks",
            str(tasks),
            "--scratch",
            str(scratch / mode),
        ],
        check=True,
        capture_output=True,
    )
    calls = 0
    for line in report.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync"):
            calls += int(fields[3])
    return calls


def fsyncs(tasks: int, scratch: Path) -> dict[str, Any]:
    if shutil.which("strace") is None:
        return {"skipped": "strace is not installed"}
    scratch.mkdir(parents=True, exist_ok=True)
    plain = _syncs(tasks, "plain", scratch)
    counts = {mode: _syncs(tasks, mode, scratch) for mode in ("normal", "full")}
    return {
        "tasks": tasks,
        "plain_calls": plain,
        **{f"{mode}_calls": calls for mode, calls in counts.items()},
        **{f"{mode}_per_task": (calls - plain) / tasks for mode, calls in counts.items()},
    }


def _child(mode: str, tasks: int, scratch: Path) -> None:
    wf = chain_workflow(tasks)
    if mode == "plain":
        _execute(wf)
    else:
        _execute(wf, durable=True, config={"state_dir": str(scratch), "state_sync": mode})


# --- report -------------------------------------------------------------------------------------------


def _table(results: dict[str, Any]) -> str:
    p, r, f = results["per_task"], results["resume"], results["fsync"]
    rows = [
        ("metric", "median"),
        (f"chain of {p['tasks']:,} tasks, not durable", f"{p['plain_us_median']:.1f} µs/task"),
        (f"chain of {p['tasks']:,} tasks, durable (local store)", f"{p['durable_us_median']:.1f} µs/task"),
        ("  what durability adds", f"{p['extra_us_median']:.1f} µs/task"),
        (f"  of which writing the plan once ({p['tasks']:,} tasks)", f"{p['plan_write_ms_median']:.1f} ms"),
        (
            f"resume, {r['completed_steps']:,} steps done: in process, to first task",
            f"{r['in_process_s_median']:.3f} s",
        ),
        ("  resume_context (open, lease, load, unpickle)", f"{r['context_s_median']:.3f} s"),
        ("    of which LocalStore.load", f"{r['load_s_median']:.3f} s"),
        ("  replay of the history until the first task", f"{r['replay_s_median']:.3f} s"),
        ("resume, `graflow resume` in a new process, to first task", f"{r['cli_s_median']:.3f} s"),
        ("  `python -m graflow --version` (start-up, info)", f"{r['cli_startup_ms_median']:.0f} ms"),
    ]
    if "skipped" in f:
        rows.append(("fsyncs per task", f["skipped"]))
    else:
        rows.append(("fsyncs per task, state_sync=normal (default)", f"{f['normal_per_task']:.3f}"))
        rows.append(("fsyncs per task, state_sync=full", f"{f['full_per_task']:.3f}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2_000, help="chain length for the per-task cost")
    parser.add_argument("--completed", type=int, default=10_000, help="completed steps of the resumed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", choices=("plain", "normal", "full"), help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.tasks, Path(args.scratch))
        return
    with tempfile.TemporaryDirectory(prefix="bench-durable-") as folder:
        scratch = Path(folder)
        results = {
            "python": sys.version.split()[0],
            "per_task": per_task(args.tasks, args.repeats, scratch / "per-task"),
            "resume": resume(args.completed, args.repeats, scratch / "resume"),
            "fsync": fsyncs(args.tasks, scratch / "fsync"),
        }
    print(json.dumps(results, indent=2) if args.json else _table(results))


if __name__ == "__main__":
    main()
