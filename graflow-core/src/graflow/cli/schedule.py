"""``graflow schedule add|list|remove|pause|resume`` and ``graflow scheduler``: workflows that start on their own.

Schedules are kept in a store (``--redis-url URL --key-prefix P`` for a fleet, or
``--state-dir DIR`` on one machine); schedulers watching that store fire them (see
:mod:`graflow.schedule.scheduler`). ``add`` loads the workflow file once to check that the
workflow exists, so a typo fails now rather than at 2 a.m.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from graflow.cli import EXIT_OK
from graflow.cli.loader import WorkflowTarget, loaded_workflow
from graflow.cli.report import make_console, print_table
from graflow.cli.run import parse_assignments
from graflow.cli.stores import store_arguments, store_config
from graflow.exceptions import ConfigError
from graflow.schedule import Schedule, ScheduleState, schedules_for
from graflow.schedule.scheduler import Scheduler
from graflow.state.opening import store_name

__all__ = [
    "add_command",
    "list_command",
    "pause_command",
    "remove_command",
    "resume_command",
    "scheduler_command",
]


def add_command(args: argparse.Namespace) -> int:
    config = store_config(args)
    schedules = schedules_for(config)
    kept_locally = store_name(config) == "local"
    queue = args.queue or ("memory" if kept_locally else "redis")
    if kept_locally and queue == "redis":
        raise ConfigError(
            "schedules in a state directory run their firings in the scheduler's own process (--queue memory); "
            "to run them on a worker fleet, keep the schedule in Redis (--redis-url URL --key-prefix P)"
        )
    target = WorkflowTarget.parse(args.target)
    with loaded_workflow(target) as wf:  # fails now, with the reason, if the file or workflow is wrong
        workflow = wf.name
    shown_target = str(target.path.resolve()) + (f":{target.workflow}" if target.workflow else "")
    schedule = Schedule(
        args.name,
        shown_target,
        cron=args.cron,
        timezone=args.timezone,
        every=args.every,
        after=args.after,
        channel=parse_assignments(args.set or []),
        queue=queue,
    )
    if schedule.after is not None:
        schedules.get(schedule.after)  # UnknownScheduleError names it
    schedules.add(schedule, replace=args.replace)
    out = make_console(sys.stdout)
    upcoming = schedule.next_tick(time.time())
    when = (
        f"next at {_iso(upcoming)}"
        if upcoming is not None
        else f"after each successful run of {schedule.after!r}"
    )
    out.print(f"schedule {schedule.name!r} added: workflow {workflow!r}, {schedule.trigger}, {when}")
    command = " ".join(["graflow", "scheduler", *store_arguments(config)])
    fleet = " (or `graflow-worker --scheduler`)" if not kept_locally else ""
    out.print(f"it fires while a scheduler watches {schedules.where}: `{command}`{fleet}")
    return EXIT_OK


def list_command(args: argparse.Namespace) -> int:
    config = store_config(args)
    schedules = schedules_for(config)
    listed = schedules.all()
    now = time.time()
    if args.json:
        rows = [
            {**schedule.to_json(), **state.to_json(), "next_at": _next(schedule, now)}
            for schedule, state in listed
        ]
        for row in rows:
            row["created_at"] = _iso(row["created_at"])
            row["last_tick"] = _iso(row["last_tick"]) if row["last_tick"] else None
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    out = make_console(sys.stdout)
    if not listed:
        out.print(f"no schedules in {schedules.where}; `graflow schedule add --help` shows how to add one")
        return EXIT_OK
    print_table(out, _table(listed, now))
    return EXIT_OK


def _table(listed: list[tuple[Schedule, ScheduleState]], now: float) -> Table:
    table = Table(box=box.ASCII)
    for column in ("schedule", "trigger", "state", "next", "last fired", "last run", "runs"):
        table.add_column(column, no_wrap=True)
    table.add_column("workflow")
    for schedule, state in listed:
        last_run = (
            f"{state.last_run[:12]} {state.last_status}" if state.last_run else (state.last_status or "-")
        )
        table.add_row(
            Text(schedule.name),
            Text(schedule.trigger),
            Text("paused" if schedule.paused else "active", style="yellow" if schedule.paused else "green"),
            _next(schedule, now) or "-",
            _iso(state.last_tick) if state.last_tick else "-",
            Text(last_run),
            str(state.fired),
            Text(schedule.target),
        )
    return table


def remove_command(args: argparse.Namespace) -> int:
    schedules = schedules_for(store_config(args))
    schedules.remove(args.name)
    make_console(sys.stdout).print(f"schedule {args.name!r} removed (the runs it fired are kept)")
    return EXIT_OK


def pause_command(args: argparse.Namespace) -> int:
    schedules = schedules_for(store_config(args))
    schedules.set_paused(args.name, True)
    make_console(sys.stdout).print(
        f"schedule {args.name!r} paused: its ticks pass without a run until it is resumed"
    )
    return EXIT_OK


def resume_command(args: argparse.Namespace) -> int:
    schedules = schedules_for(store_config(args))
    schedule = schedules.get(args.name)
    schedules.set_paused(args.name, False)
    # Ticks that passed while paused are skipped: the next firing is the next tick from now.
    tick = schedule.latest_tick(time.time())
    if tick is not None:
        schedules.claim(args.name, tick)
    upcoming = _next(schedule, time.time())
    when = f"; next at {upcoming}" if upcoming else ""
    make_console(sys.stdout).print(f"schedule {args.name!r} resumed{when}")
    return EXIT_OK


def scheduler_command(args: argparse.Namespace) -> int:
    """Fire the store's schedules until Ctrl-C or SIGTERM; firings already running finish first."""
    config = store_config(args)
    scheduler = Scheduler(config, poll=args.poll)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("graflow.schedule")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = make_console(sys.stdout)
    out.print(f"scheduler watching {scheduler.schedules.where}; Ctrl-C stops it")
    out.file.flush()
    try:
        scheduler.run(stop)
    except KeyboardInterrupt:
        stop.set()
    out.print("scheduler stopping: waiting for the runs it started")
    scheduler.close(wait=True)
    return EXIT_OK


def _next(schedule: Schedule, now: float) -> str | None:
    if schedule.paused:
        return None
    upcoming = schedule.next_tick(now)
    return _iso(upcoming) if upcoming is not None else None


def _iso(timestamp: Any) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(timestamp)))
