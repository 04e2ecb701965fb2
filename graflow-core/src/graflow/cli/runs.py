"""``graflow runs`` and ``graflow runs show RUN_ID``: the runs a state store keeps, and one run task by task.

Both read the store and nothing else: no workflow file, no task runs. ``--json`` prints
what scripts need (:meth:`RunInfo.to_json <graflow.state.records.RunInfo.to_json>`, plus
the tasks for ``show``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Final

from graflow.cli import EXIT_OK, RUNS_SHOWN
from graflow.cli.progress import graph_rows
from graflow.cli.report import history_table, make_console, print_table, runs_table
from graflow.cli.stores import store_arguments, store_config
from graflow.core.resume import store_for
from graflow.state.records import Completion, RunStatus
from graflow.state.store import SavedRun

__all__ = ["TaskHistory", "runs_command", "show_command", "task_history"]

#: How the ``worker`` column names the process that drove the run.
DRIVER: Final = "driver"


@dataclass
class TaskHistory:
    """One row of ``graflow runs show``: what the store recorded of one task (or group)."""

    task_id: str
    #: ``"task"`` or ``"group"``.
    kind: str
    #: ``"done"``, or ``"not run"`` when no step of it was recorded.
    status: str
    #: Recorded steps: ``next_iteration`` and re-entries each add one.
    occurrences: int = 0
    #: ``host:pid`` of the process that ran its latest step, or ``driver``.
    worker: str = "-"
    #: Seconds, summed over its steps.
    duration: float = 0.0
    #: ISO 8601 (UTC) end of its latest step.
    finished_at: str | None = None
    #: Nesting depth (members of a group are one deeper than the group).
    depth: int = 0
    #: Whether it was added at run time (``next_task``) rather than defined in the workflow.
    added: bool = False

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        del row["depth"]
        return row


def task_history(saved: SavedRun) -> list[TaskHistory]:
    """The run's tasks in the order of its graph, then those added at run time, each with its steps."""
    steps: dict[str, list[Completion]] = {}
    for completion in saved.completions:
        steps.setdefault(completion.task_id, []).append(completion)
    plan = saved.plan
    rows = [
        _row(node.task_id, node.kind, steps, depth)
        for node, depth in graph_rows(plan.graph, plan.start_nodes)
    ]
    listed = {row.task_id for row in rows}
    for task_id in _added(saved.completions, listed):
        row = _row(task_id, "task", steps, 0)
        row.added = True
        rows.append(row)
    return rows


def _row(task_id: str, kind: str, steps: dict[str, list[Completion]], depth: int) -> TaskHistory:
    recorded = steps.get(task_id, [])
    if not recorded:
        return TaskHistory(task_id, kind, "not run", depth=depth)
    last = recorded[-1]
    return TaskHistory(
        task_id,
        kind,
        "done",
        occurrences=len(recorded),
        worker=last.worker or DRIVER,
        duration=sum(c.duration for c in recorded),
        finished_at=_iso(last.finished_at),
        depth=depth,
    )


def _added(completions: list[Completion], listed: set[str]) -> Iterator[str]:
    """Ids of tasks added at run time, in the order they were asked for, each once."""
    seen = set(listed)
    for completion in completions:
        requests = completion.requests
        for executable, _goto in requests.next_tasks if requests is not None else ():
            for task in executable.iter_tasks():
                if task.task_id not in seen:
                    seen.add(task.task_id)
                    yield task.task_id


def _iso(timestamp: float) -> str:
    """As in ``--json`` (:meth:`RunInfo.to_json`): ISO 8601, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def runs_command(args: argparse.Namespace) -> int:
    """List the runs of a store, newest first: a table, or ``--json`` for scripts."""
    store = store_for(store_config(args))
    status = RunStatus(args.status) if args.status else None
    limit: int | None = args.limit
    if limit is None and not args.json:  # a script asking for JSON gets every run
        limit = RUNS_SHOWN
    infos = store.runs(status, args.workflow, None if limit is None else limit + 1)
    more = limit is not None and len(infos) > limit
    infos = infos[:limit]
    if args.json:
        sys.stdout.write(json.dumps([info.to_json() for info in infos], indent=2) + "\n")
        return EXIT_OK
    out = make_console(sys.stdout)
    if not infos:
        which = " ".join(
            f"{name} {value!r}"
            for name, value in (("status", args.status), ("workflow", args.workflow))
            if value
        )
        out.print(f"no runs{' with ' + which if which else ''} in {store.where}")
        return EXIT_OK
    print_table(out, runs_table(infos))
    if more:
        out.print(f"the {limit} newest runs are shown; --limit N shows more")
    return EXIT_OK


def show_command(args: argparse.Namespace) -> int:
    """One run task by task: status, occurrences, worker, duration, when each finished; and the run's error."""
    config = store_config(args)
    saved = store_for(config).load(args.run_id)
    info = saved.info
    rows = task_history(saved)
    rerun_of = saved.plan.rerun_of
    if args.json:
        shown = {
            **info.to_json(),
            "holder": info.holder,
            "rerun_of": {"run_id": rerun_of[0], "from_task": rerun_of[1]} if rerun_of else None,
            "tasks": [row.to_json() for row in rows],
        }
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        return EXIT_OK
    out = make_console(sys.stdout)
    shown_info = info.to_json()
    out.print(f"run {info.run_id}: workflow {info.workflow!r}, {info.status}")
    out.print(
        f"started {shown_info['started_at']}, finished {shown_info['finished_at'] or '-'}, "
        f"tasks done {info.tasks_done}/{info.tasks_total}"
    )
    if rerun_of is not None:
        out.print(f"a rerun of run {rerun_of[0]} from task {rerun_of[1]!r}")
    if info.holder is not None:
        out.print(f"driven by {info.holder}")
    elif not info.status.finished:
        resume = shlex.join(["graflow", "resume", info.run_id, *store_arguments(config)])
        out.print(f"no live driver: `{resume}` carries it on")
    print_table(out, history_table(rows))
    if info.error:
        out.print(f"error: {info.error}")
    return EXIT_OK
