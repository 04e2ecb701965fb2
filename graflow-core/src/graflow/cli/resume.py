"""``graflow resume RUN_ID`` and ``graflow rerun RUN_ID --from TASK``: carry on a run kept in a state store.

Neither needs the workflow's file: the graph comes from the store (functions by value).
Both print ``run <id>`` first, as ``graflow run`` does, then show the same progress and
summary; steps taken from the earlier execution are listed as ``reused``.
"""

from __future__ import annotations

import argparse
import sys

from graflow.cli.report import make_console
from graflow.cli.run import announce, execute_and_report
from graflow.cli.stores import store_config
from graflow.core.resume import rerun_context, resume_context, store_for

__all__ = ["rerun_command", "resume_command"]


def resume_command(args: argparse.Namespace) -> int:
    """Carry a stopped run on from where its history ends; a finished one only shows its result."""
    config = store_config(args)
    store = store_for(config)
    try:
        info = store.run(args.run_id)  # RunNotFoundError before anything else
    finally:
        store.close()
    context = resume_context(args.run_id, config)  # RunInUseError while a live driver holds it
    out = make_console(sys.stdout)
    err = make_console(sys.stderr)
    announce(out, context)
    reused = len(context.history or ())
    if info.status.finished:
        out.print(
            f"Run of workflow {info.workflow!r} already {info.status} at {info.to_json()['finished_at']}; "
            f"nothing runs again ({_steps(reused)} replayed for its result)"
        )
    else:
        out.print(
            f"Resuming workflow {info.workflow!r} ({info.status}, started {info.to_json()['started_at']}): "
            f"{_steps(reused)} reused, not run again"
        )
    return execute_and_report(context, out, err, verbose=args.verbose)


def rerun_command(args: argparse.Namespace) -> int:
    """Replay a run up to ``--from TASK`` as a new run; that task and everything downstream run again."""
    config = store_config(args)
    context = rerun_context(args.run_id, args.from_task, config)  # unknown run or task: before anything runs
    out = make_console(sys.stdout)
    err = make_console(sys.stderr)
    announce(out, context)
    out.print(
        f"Rerunning workflow {context.workflow_name!r} from task {args.from_task!r}: a new run replaying "
        f"run {args.run_id} ({_steps(len(context.history or ()))} reused, not run again)"
    )
    return execute_and_report(context, out, err, verbose=args.verbose)


def _steps(count: int) -> str:
    return "1 recorded step" if count == 1 else f"{count} recorded steps"
