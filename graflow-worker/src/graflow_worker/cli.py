"""The ``graflow-worker`` command: run a worker, or show the fleet.

::

    graflow-worker --worker-id worker-1 --max-concurrent-tasks 4      # run a worker
    graflow-worker status                                              # the live fleet
    graflow-worker status --self                                       # liveness probe

Every option also reads an environment variable (see :mod:`graflow_worker.options`).
SIGTERM or SIGINT: the worker takes no new work, lets running tasks finish within
``--graceful-shutdown-timeout``, hands the rest back to the queue and exits 0. A second
signal exits at once (status 1), handing running tasks back first.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graflow.schedule.scheduler import Scheduler

from graflow_worker.options import (
    CONNECTION_OPTIONS,
    WORKER_OPTIONS,
    add_options,
    build_queue,
    non_negative_float,
    non_negative_int,
    redis_url,
)

__all__ = ["add_status_arguments", "add_worker_arguments", "build_parser", "main", "run", "status"]

_USAGE_EPILOG = """\
commands:
  graflow-worker [options]          run a worker (the default)
  graflow-worker status [options]   list the live fleet; `status --help` for its options
"""


def add_worker_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """The options of a worker process (connection + worker settings)."""
    add_options(parser.add_argument_group("redis"), CONNECTION_OPTIONS, environ)
    add_options(parser.add_argument_group("worker"), WORKER_OPTIONS, environ)


def add_status_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """The options of ``status``."""
    env = os.environ if environ is None else environ
    add_options(parser.add_argument_group("redis"), CONNECTION_OPTIONS, environ)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--dead-letters",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="show the latest N dead letters (default 5)",
    )
    parser.add_argument(
        "--self",
        dest="self_check",
        action="store_true",
        help="liveness check of the worker in this container: exit 0 when its --health-file is fresh",
    )
    parser.add_argument(
        "--health-file",
        default=env.get("GRAFLOW_HEALTH_FILE") or None,
        metavar="PATH",
        help="the worker's health file, for --self (env GRAFLOW_HEALTH_FILE)",
    )
    parser.add_argument(
        "--max-age",
        type=non_negative_float,
        default=30.0,
        metavar="SECONDS",
        help="--self fails when the last heartbeat is older than this (default 30)",
    )


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``graflow-worker`` (running a worker)."""
    parser = argparse.ArgumentParser(
        prog="graflow-worker",
        description="Run a Graflow worker: takes tasks from the Redis queue and runs them.",
        epilog=_USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_worker_arguments(parser, environ)
    return parser


def build_status_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``graflow-worker status``."""
    parser = argparse.ArgumentParser(
        prog="graflow-worker status",
        description="Show the live fleet: workers, what each runs, counters, queue depth, dead letters.",
    )
    add_status_arguments(parser, environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``graflow-worker``, ``python -m graflow_worker`` and ``python -m graflow.worker.main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "status":
        return status(build_status_parser().parse_args(args[1:]))
    if args and args[0] == "run":
        args = args[1:]
    return run(build_parser().parse_args(args))


# --- running a worker -------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM/SIGINT; 0 after a graceful stop."""
    # The worker and what it needs (redis, structlog, prometheus_client) load only when a
    # worker runs: this module also builds the `graflow` command's subcommands, in every process.
    import structlog

    from graflow.exceptions import ConfigError
    from graflow_redis.errors import RedisUnavailableError
    from graflow_worker.health import HealthFile
    from graflow_worker.logging import configure_logging
    from graflow_worker.metrics import WorkerMetrics
    from graflow_worker.observer import WorkerObserver
    from graflow_worker.worker import TaskWorker, default_worker_id

    worker_id = args.worker_id or default_worker_id()
    configure_logging(args.log_level, args.log_format)
    log = structlog.get_logger("graflow_worker").bind(worker_id=worker_id)
    try:
        queue = build_queue(args)
    except ConfigError as exc:  # a bad setting, or no secret key for a Redis off this machine
        sys.stderr.write(f"graflow-worker: error: {exc}\n")
        return 2
    except RedisUnavailableError as exc:  # a cluster (or sentinels) never answered while starting
        sys.stderr.write(f"graflow-worker: error: {exc}\n")
        return 1
    observers: list[WorkerObserver] = []
    metrics: WorkerMetrics | None = None
    if args.metrics_port is not None:
        metrics = WorkerMetrics(queue)
        observers.append(metrics)
    if args.health_file:
        observers.append(HealthFile(args.health_file))
    try:
        worker = TaskWorker(
            queue,
            worker_id=worker_id,
            max_concurrent_tasks=args.max_concurrent_tasks,
            graceful_shutdown_timeout=args.graceful_shutdown_timeout,
            heartbeat_interval=args.heartbeat_interval,
            observers=observers,
            pool=args.pool,
            max_tasks_per_child=args.max_tasks_per_child,
            # Children log as this process does (a child starts with logging unconfigured).
            child_setup=(
                functools.partial(configure_logging, args.log_level, args.log_format)
                if args.pool == "processes"
                else None
            ),
        )
    except ConfigError as exc:  # settings that do not go together (--max-tasks-per-child with threads)
        sys.stderr.write(f"graflow-worker: error: {exc}\n")
        return 2
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop_requested.is_set():
            log.warning("worker_forced_exit", released=worker.hand_back())
            _flush()
            os._exit(1)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if metrics is not None:
        try:
            metrics.serve(args.metrics_port)
        except OSError as exc:  # in use, or not ours to bind
            sys.stderr.write(
                f"graflow-worker: error: --metrics-port {args.metrics_port}: cannot listen there "
                f"({exc.strerror or exc}); choose a free port, or stop what listens on it\n"
            )
            return 2
    worker.start()
    scheduler = _start_scheduler(args, stop_requested) if args.scheduler else None
    signing = f"{queue.sealer.count} key(s)" if queue.sealer is not None else "off"
    log.info(
        "worker_listening", redis=_redacted(redis_url(args)), metrics_port=args.metrics_port, signing=signing
    )
    while not stop_requested.wait(1.0):
        pass
    drained = worker.stop()
    if scheduler is not None:
        scheduler.close()  # runs it fired keep their state in Redis: `graflow resume` carries them on
    _flush()
    if not drained:
        # Task threads that outlived the shutdown timeout cannot be stopped and would keep
        # the interpreter alive; their entries were handed back, so leave without them.
        os._exit(0)
    return 0


def _start_scheduler(args: argparse.Namespace, stop: threading.Event) -> Scheduler:
    """Fire the key prefix's schedules from a thread of this worker until ``stop``."""
    from graflow.schedule.scheduler import Scheduler  # lazy: only workers started with --scheduler

    config = {
        "redis_url": redis_url(args),
        "key_prefix": args.key_prefix,
        "secret_key": args.secret_key,
        "allow_unsigned": args.allow_unsigned,
    }
    scheduler = Scheduler({k: v for k, v in config.items() if v is not None})
    threading.Thread(target=scheduler.run, args=(stop,), name="graflow-scheduler", daemon=True).start()
    return scheduler


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not turn a clean stop into a crash
            pass


def _redacted(url: str) -> str:
    """The URL without its passwords (a sentinel's is in the query), for logs."""
    if "password=" in url:
        url = url.partition("?")[0]
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


# --- status -----------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    """Print the fleet report; with ``--self``, check this container's worker instead."""
    if args.self_check:
        # A liveness probe runs often and must not load redis (see run()).
        from graflow_worker.health import check_health_file

        if not args.health_file:
            sys.stderr.write(
                "error: --self needs the worker's health file: pass --health-file PATH or set "
                "GRAFLOW_HEALTH_FILE (the same one the worker was started with)\n"
            )
            return 2
        healthy, why = check_health_file(args.health_file, args.max_age)
        (sys.stdout if healthy else sys.stderr).write(f"{'ok' if healthy else 'unhealthy'}: {why}\n")
        return 0 if healthy else 1

    # Loaded here for the reason given in run().
    from graflow.exceptions import ConfigError
    from graflow_redis.connection import CONNECTION_ERRORS
    from graflow_worker.status import fleet_report, render_report

    try:
        # The report unpickles nothing (heartbeats are JSON, dead letters stay bytes): no key needed.
        queue = build_queue(args, allow_unsigned=True)
        report = fleet_report(queue, dead_letters=args.dead_letters)
    except ConfigError as exc:
        sys.stderr.write(f"graflow-worker status: error: {exc}\n")
        return 2
    except CONNECTION_ERRORS as exc:
        sys.stderr.write(
            f"error: cannot reach Redis at {_redacted(redis_url(args))} ({type(exc).__name__}: {exc}); "
            "check --redis-url or REDIS_HOST/REDIS_PORT\n"
        )
        return 1
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(render_report(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
