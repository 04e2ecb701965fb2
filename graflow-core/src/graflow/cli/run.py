"""``graflow run FILE[:WORKFLOW]``: execute a workflow with progress lines and a per-task summary."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graflow.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from graflow.cli.loader import WorkflowTarget, loaded_workflow
from graflow.cli.progress import RunProgress, TaskRecord
from graflow.cli.report import (
    ProgressPrinter,
    format_duration,
    make_console,
    print_table,
    short_repr,
    summary_table,
)
from graflow.cli.tracebacks import user_traceback
from graflow.exceptions import ConfigError, GraflowError
from graflow.plugins import get_plugin_manager

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["backend_options", "parse_assignments", "run_command"]


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["limit=10", "name=ada"]`` -> ``{"limit": 10, "name": "ada"}``: JSON when it parses, else text."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set expects KEY=VALUE, got {item!r}; for example --set limit=10 --set name=ada "
                "(values are read as JSON when they parse, else as text)"
            )
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def backend_options(queue: str, redis_url: str | None) -> dict[str, Any]:
    """``execute()`` keyword arguments for ``--queue``/``--redis-url``; fails early if a plugin is missing.

    A queue backend's channel backend of the same name is used with it when there is
    one (``redis`` has both), so tasks on a fleet share the run's channel.
    """
    if queue == "memory":
        if redis_url is not None:
            raise ConfigError("--redis-url needs --queue redis (the memory queue has no server)")
        return {}
    manager = get_plugin_manager()
    manager.resolve("graflow_queue_backends", queue)  # PluginNotInstalledError / ConfigError
    channel = queue if queue in manager.names("graflow_channel_backends") else "memory"
    config: dict[str, Any] = {}
    if redis_url is not None:
        config["redis_url"] = redis_url
    return {"queue_backend": queue, "channel_backend": channel, "config": config}


def run_command(args: argparse.Namespace) -> int:
    """The ``run`` subcommand: load, execute with progress, summarize; returns the exit status."""
    initial_channel = parse_assignments(args.set or [])
    options = backend_options(args.queue, args.redis_url)
    if args.max_steps is not None:
        options["max_steps"] = args.max_steps
    out = make_console(sys.stdout)
    err = make_console(sys.stderr)
    with loaded_workflow(WorkflowTarget.parse(args.target)) as wf:
        out.print(f"Running workflow {wf.name!r} from {args.target} (queue: {args.queue})")
        progress = RunProgress(ProgressPrinter(out))
        try:
            with progress.registered():
                result = wf.execute(initial_channel=initial_channel, **options)
        except KeyboardInterrupt:
            _print_summary(out, progress, wf.name, "was interrupted")
            err.print("graflow: interrupted; tasks still running were abandoned")
            return EXIT_INTERRUPTED
        except Exception as exc:
            _print_summary(out, progress, wf.name, "failed")
            sys.stderr.write(user_traceback(exc))
            err.print(f"graflow: error: {_failure_line(exc)}")
            return EXIT_FAILED
        _print_summary(out, progress, wf.name, "succeeded")
        out.print(f"Result: {short_repr(result)}")
    return EXIT_OK


def _print_summary(out: Console, progress: RunProgress, name: str, outcome: str) -> None:
    if progress.context is None:  # failed before the first task (a backend, the graph)
        return
    records = progress.records()
    out.print()
    print_table(out, summary_table(records))
    elapsed = format_duration(progress.elapsed or 0.0)
    out.print(
        f"Workflow {name!r} {outcome} in {elapsed} (run {progress.context.session_id[:12]}): "
        f"{_counts(records)}"
    )


def _counts(records: Sequence[TaskRecord]) -> str:
    tasks = [r for r in records if r.kind == "task"]
    counts = {status: sum(r.status == status for r in tasks) for status in ("succeeded", "failed", "skipped")}
    text = ", ".join(f"{n} {status}" for status, n in counts.items())
    running = sum(r.status == "running" for r in tasks)
    return f"{text}, {running} still running" if running else text


def _failure_line(exc: BaseException) -> str:
    """One line naming what failed: the task (``exc.graflow_task_id``), the group, or the run."""
    task_id = getattr(exc, "graflow_task_id", None)
    if task_id is None and isinstance(exc, GraflowError):
        return str(exc)  # Graflow's own errors name the task, group or limit themselves
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    if task_id:
        return f"task {task_id!r} failed: {text}"
    return f"the run failed: {text}"
