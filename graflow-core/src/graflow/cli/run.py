"""``graflow run FILE[:WORKFLOW]``: execute a workflow with progress lines and a per-task summary.

The run's context is built first and its id printed (``run <id>``, the first line), so a
script or a person can follow or resume it before any task starts. :func:`execute_and_report`
is the part ``graflow resume`` and ``graflow rerun`` share.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graflow.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SUSPENDED, EXIT_USAGE
from graflow.cli.feedback import respond_hint
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
from graflow.cli.stores import ENV_KEY_PREFIX, ENV_REDIS_URL, store_arguments
from graflow.core.engine import WorkflowEngine
from graflow.exceptions import (
    ConfigError,
    GraflowError,
    StateStoreError,
)
from graflow.hitl.types import FeedbackRequest, FeedbackTimeoutError, suspends
from graflow.plugins import get_plugin_manager
from graflow.remote.envelope import RemoteTaskError
from graflow.state.local import LocalStore
from graflow.tracebacks import user_traceback

if TYPE_CHECKING:
    from rich.console import Console

    from graflow.core.context import ExecutionContext

__all__ = [
    "announce",
    "backend_options",
    "execute_and_report",
    "parse_assignments",
    "resume_hint",
    "run_command",
    "run_options",
]


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


def backend_options(
    queue: str, redis_url: str | None, key_prefix: str | None = None, *, allow_unsigned: bool = False
) -> dict[str, Any]:
    """``create_context`` keyword arguments for ``--queue``/``--redis-url``/``--key-prefix``/``--allow-unsigned``.

    Fails early if a plugin is missing. A queue backend's channel backend of the same name
    is used with it when there is one (``redis`` has both), so tasks on a fleet share the
    run's channel. With ``--queue redis``, ``REDIS_URL`` and ``GRAFLOW_KEY_PREFIX`` stand in
    for options left out, as for ``graflow-worker``.
    """
    if queue == "memory":
        if redis_url is not None:
            raise ConfigError("--redis-url needs --queue redis (the memory queue has no server)")
        if key_prefix is not None:
            raise ConfigError("--key-prefix needs --queue redis (the memory queue has no Redis keys)")
        if allow_unsigned:
            raise ConfigError(
                "--allow-unsigned needs --queue redis (the memory queue reads nothing from Redis)"
            )
        return {}
    manager = get_plugin_manager()
    manager.resolve("graflow_queue_backends", queue)  # PluginNotInstalledError / ConfigError
    channel = queue if queue in manager.names("graflow_channel_backends") else "memory"
    config: dict[str, Any] = {}
    redis_url = redis_url or os.environ.get(ENV_REDIS_URL) or None
    key_prefix = key_prefix or os.environ.get(ENV_KEY_PREFIX) or None
    if redis_url is not None:
        config["redis_url"] = redis_url
    if key_prefix is not None:
        config["key_prefix"] = key_prefix
    if allow_unsigned:
        config["allow_unsigned"] = True
    return {"queue_backend": queue, "channel_backend": channel, "config": config}


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """``create_context`` keyword arguments for every option of ``graflow run``.

    ``--state-dir`` implies ``--durable``. Durable runs of the memory queue are kept in the
    local store; a run on another queue is kept by that queue's own store, if its plugin has one.
    """
    options = backend_options(args.queue, args.redis_url, args.key_prefix, allow_unsigned=args.allow_unsigned)
    if args.durable or args.state_dir is not None:
        if args.queue != "memory":
            if args.state_dir is not None:
                raise ConfigError(
                    f"--state-dir keeps runs of the memory queue; a run on --queue {args.queue} is kept "
                    "by that queue's own state store"
                )
            if args.queue not in get_plugin_manager().names("graflow_state_stores"):
                raise ConfigError(
                    f"--durable: the installed {args.queue!r} queue backend keeps no runs (its plugin "
                    "provides no state store yet); drop --durable, or run on the memory queue with "
                    "--durable to keep the run in a state directory"
                )
        options["durable"] = True
        if args.state_dir is not None:
            options.setdefault("config", {})["state_dir"] = args.state_dir
    if args.max_steps is not None:
        options["max_steps"] = args.max_steps
    return options


def run_command(args: argparse.Namespace) -> int:
    """The ``run`` subcommand: load, print the run id, execute with progress, summarize."""
    initial_channel = parse_assignments(args.set or [])
    options = run_options(args)
    out = make_console(sys.stdout)
    err = make_console(sys.stderr)
    with loaded_workflow(WorkflowTarget.parse(args.target)) as wf:
        try:
            context = wf.create_context(**options)
        except ConfigError as exc:  # a malformed setting (a Redis URL...): bad usage, one line
            err.print(f"graflow: error: {exc}")
            return EXIT_USAGE
        except GraflowError as exc:  # the graph, a backend or the state store refused before any task
            sys.stderr.write(_traceback_text(exc, args.verbose))
            err.print(f"graflow: error: {exc}")
            return EXIT_FAILED
        for key, value in initial_channel.items():
            context.channel.set(key, value)
        announce(out, context)
        kept = f", kept in {context.store.where}" if context.durable else ""
        out.print(f"Running workflow {wf.name!r} from {args.target} (queue: {args.queue}{kept})")
        return execute_and_report(context, out, err, verbose=args.verbose)


def announce(out: Console, context: ExecutionContext) -> None:
    """Print ``run <run id>`` and flush it, so whoever reads the output has the id before any task starts."""
    out.print(f"run {context.session_id}")
    out.file.flush()


def execute_and_report(
    context: ExecutionContext, out: Console, err: Console, *, verbose: bool = False
) -> int:
    """Execute ``context`` with progress lines, print the summary; return the exit status.

    A failure is one line; before it, the traceback of the task's own exception (``verbose``: all of it).
    """
    progress = RunProgress(ProgressPrinter(out, lambda request: _answer_hint(context, request)))
    name = context.workflow_name
    try:
        with progress.registered():
            result = WorkflowEngine().execute(context)
    except FeedbackTimeoutError as exc:
        if not suspends(exc):  # not durable: the task's failure, reported as any other
            return _report_failure(exc, context, progress, out, err, verbose)
        _print_summary(out, progress, name, "suspended")
        _print_waiting(out, context)
        return EXIT_SUSPENDED
    except KeyboardInterrupt:
        _print_summary(out, progress, name, "was interrupted")
        err.print("graflow: interrupted; tasks still running were abandoned")
        _print_resume_hint(err, context)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report_failure(exc, context, progress, out, err, verbose)
    _print_summary(out, progress, name, "succeeded")
    out.print(f"Result: {short_repr(result)}")
    return EXIT_OK


def _report_failure(
    exc: Exception,
    context: ExecutionContext,
    progress: RunProgress,
    out: Console,
    err: Console,
    verbose: bool,
) -> int:
    _print_summary(out, progress, context.workflow_name, "failed")
    sys.stderr.write(_traceback_text(exc, verbose))
    err.print(f"graflow: error: {_failure_line(exc)}")
    if not isinstance(exc, StateStoreError):  # its own message says how to resume
        _print_resume_hint(err, context)
    return EXIT_FAILED


def _kept_config(context: ExecutionContext) -> dict[str, Any]:
    """The store options that point another command at ``context``'s store."""
    store = context.store
    if isinstance(store, LocalStore):
        return {"state_dir": str(store.directory.resolve())}
    return dict(context.config)


def resume_hint(context: ExecutionContext) -> str | None:
    """The command that carries ``context``'s run on, if the run is kept in a durable store."""
    if context.journal is None:
        return None
    return shlex.join(["graflow", "resume", context.session_id, *store_arguments(_kept_config(context))])


def _answer_hint(context: ExecutionContext, request: FeedbackRequest) -> str:
    if context.journal is None:
        return (
            "only this process can answer (the run is not durable: `graflow run --durable` lets "
            "`graflow feedback respond` answer from anywhere)"
        )
    return respond_hint(request, _kept_config(context))


def _print_waiting(out: Console, context: ExecutionContext) -> None:
    """The questions the suspended run waits for, how to answer each, and how to carry it on."""
    config = _kept_config(context)
    pending = context.feedback_manager.list_pending_requests(context.session_id)
    out.print(f"The run is suspended, waiting for {len(pending)} answer{'s' if len(pending) != 1 else ''}:")
    for request in pending:
        out.print(f"  {request.task_id}: {request.prompt}")
        out.print(f"    {respond_hint(request, config)}")
    out.print(f"then `{resume_hint(context)}` carries it on (nothing that finished runs again)")


def _print_resume_hint(err: Console, context: ExecutionContext) -> None:
    command = resume_hint(context)
    if command is not None:
        err.print(
            f"graflow: the run is kept in {context.store.where}; once the cause is fixed, `{command}` carries it on"
        )


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
    shown = ("succeeded", "reused", "failed", "waiting", "skipped")
    counts = {status: sum(r.status == status for r in tasks) for status in shown}
    text = ", ".join(
        f"{n} {status}" for status, n in counts.items() if n or status not in ("reused", "waiting")
    )
    running = sum(r.status == "running" for r in tasks)
    return f"{text}, {running} still running" if running else text


def _traceback_text(exc: BaseException, verbose: bool) -> str:
    """What to print above the error's line: the traceback of the task's own exception, if one is at
    the root of ``exc`` (through its code, or the worker's note when it ran elsewhere); everything
    with ``verbose``. A Graflow error's own traceback would only repeat its line."""
    if verbose:
        return "".join(traceback.format_exception(exc))
    own: BaseException | None = exc
    if isinstance(exc, GraflowError) and not isinstance(exc, RemoteTaskError):
        own = exc.__cause__  # a group's failing member, say; never the OSError under a StateStoreError
        while own is not None and not _raised_by_a_task(own):
            own = own.__cause__
    if own is None:
        return ""
    return user_traceback(own) or "".join(
        f"{note.rstrip()}\n" for note in getattr(own, "__notes__", ()) if note.startswith("remote traceback")
    )


def _raised_by_a_task(exc: BaseException) -> bool:
    """Whether ``exc`` is a task's own exception (on a worker too), not one of Graflow's."""
    own = not isinstance(exc, GraflowError) or isinstance(exc, RemoteTaskError)
    return own and getattr(exc, "graflow_task_id", None) is not None


def _failure_line(exc: BaseException) -> str:
    """One line naming what failed: the task (``exc.graflow_task_id``), the group, or the run."""
    task_id = getattr(exc, "graflow_task_id", None)
    if task_id is None and isinstance(exc, GraflowError):
        return str(exc)  # Graflow's own errors name the task, group or limit themselves
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    if task_id:
        return f"task {task_id!r} failed: {text}"
    return f"the run failed: {text}"
