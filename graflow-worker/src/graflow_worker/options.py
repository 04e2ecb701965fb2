"""The worker's settings: every command-line option and the environment variable behind it.

One table drives the argument parser, the README's table and the deployment-file
checks, so a flag and its variable can never drift apart. A flag given on the command
line wins over its variable, which wins over the default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from graflow import settings
from graflow.core.routing import DEFAULT_QUEUE, check_queue
from graflow.exceptions import ConfigError

if TYPE_CHECKING:
    from graflow_redis.queue import DistributedTaskQueue

__all__ = [
    "CONNECTION_OPTIONS",
    "POOL_KINDS",
    "WORKER_OPTIONS",
    "Option",
    "PoolKind",
    "add_options",
    "build_queue",
    "redis_url",
]


#: Where a worker runs its tasks: threads of its own process, or child processes.
PoolKind = Literal["threads", "processes"]
POOL_KINDS: Final[tuple[PoolKind, ...]] = ("threads", "processes")


def _usage(check: Callable[[], Any]) -> Any:
    """``check()``; its :class:`ConfigError` becomes argparse's usage error (one line, exit status 2)."""
    try:
        return check()
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return int(_usage(lambda: settings.whole("the value", text)))


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return int(_usage(lambda: settings.whole("the value", text, minimum=0)))


def non_negative_float(text: str) -> float:
    """Finite seconds >= 0 (``nan`` and ``inf`` are refused)."""
    return float(_usage(lambda: settings.seconds("the value", text, zero_ok=True)))


def positive_float(text: str) -> float:
    """Finite seconds > 0 (``nan`` and ``inf`` are refused)."""
    return float(_usage(lambda: settings.seconds("the value", text)))


def queue_names(text: str) -> list[str]:
    """``gpu,default`` as ``["gpu", "default"]``, each a valid queue name."""
    names = [name.strip() for name in text.split(",")]
    for name in names:
        try:
            check_queue(name, "--queues")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return list(dict.fromkeys(names))


def pool_kind(text: str) -> str:
    """``threads`` or ``processes`` (any case): argparse checks no ``choices`` of a value read from the environment."""
    value = text.strip().lower()
    if value not in POOL_KINDS:
        raise argparse.ArgumentTypeError(f"must be 'threads' or 'processes', got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535."""
    return int(_usage(lambda: settings.whole("a port", text, minimum=0, maximum=65535)))


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its environment variable, its type and default."""

    flag: str
    env: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    #: A switch without a value (its variable: ``1``, ``true`` or ``yes`` turns it on).
    switch: bool = False
    #: Other flags for the same setting (``--concurrency`` for ``--max-concurrent-tasks``).
    aliases: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


#: How to reach the fleet's Redis; shared by the worker and ``status``.
CONNECTION_OPTIONS: Final[tuple[Option, ...]] = (
    Option("--redis-url", "REDIS_URL", "Redis URL (wins over host/port/db)", metavar="URL"),
    Option("--redis-host", "REDIS_HOST", "Redis host", default="localhost", metavar="HOST"),
    Option("--redis-port", "REDIS_PORT", "Redis port", type=port, default=6379, metavar="PORT"),
    Option("--redis-db", "REDIS_DB", "Redis database number", type=non_negative_int, default=0, metavar="N"),
    Option(
        "--key-prefix",
        "GRAFLOW_KEY_PREFIX",
        "prefix of every Redis key; drivers and workers must agree",
        default="graflow",
        metavar="PREFIX",
    ),
)

#: What a worker process does.
WORKER_OPTIONS: Final[tuple[Option, ...]] = (
    Option("--worker-id", "GRAFLOW_WORKER_ID", "name in the fleet (default: host-pid)", metavar="ID"),
    Option(
        "--max-concurrent-tasks",
        "MAX_CONCURRENT_TASKS",
        "tasks run at once (threads, or child processes with --pool processes)",
        type=positive_int,
        default=4,
        metavar="N",
        aliases=("--concurrency",),
    ),
    Option(
        "--pool",
        "GRAFLOW_POOL",
        "where tasks run: threads of the worker process, or processes (one child per task slot; "
        "for CPU-bound Python, which threads cannot run in parallel)",
        type=pool_kind,
        default="threads",
        metavar="{threads,processes}",
    ),
    Option(
        "--max-tasks-per-child",
        "GRAFLOW_MAX_TASKS_PER_CHILD",
        "with --pool processes: replace a child process after it ran N tasks (bounds what leaks; "
        "default: never)",
        type=positive_int,
        metavar="N",
    ),
    Option(
        "--queues",
        "GRAFLOW_QUEUES",
        "queues to take tasks from, comma-separated; each gets its turn, and within a queue higher "
        "priorities go first",
        type=queue_names,
        default=DEFAULT_QUEUE,
        metavar="Q1,Q2",
    ),
    Option(
        "--graceful-shutdown-timeout",
        "GRAFLOW_GRACEFUL_SHUTDOWN_TIMEOUT",
        "seconds running tasks get to finish after SIGTERM/SIGINT before they are handed back",
        type=non_negative_float,
        default=30.0,
        metavar="SECONDS",
    ),
    Option(
        "--visibility-timeout",
        "GRAFLOW_VISIBILITY_TIMEOUT",
        "seconds before a task held by a silent (dead) worker goes to another",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
    ),
    Option(
        "--max-deliveries",
        "GRAFLOW_MAX_DELIVERIES",
        "times a task is started without completing (its worker died each time) before it is "
        "dead-lettered; after the first such death it runs alone",
        type=positive_int,
        default=10,
        metavar="N",
    ),
    Option(
        "--heartbeat-interval",
        "GRAFLOW_HEARTBEAT_INTERVAL",
        "seconds between heartbeats (at most a third of the visibility timeout is used)",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
    ),
    Option(
        "--metrics-port",
        "GRAFLOW_METRICS_PORT",
        "serve Prometheus metrics on this port (off when unset)",
        type=port,
        metavar="PORT",
    ),
    Option(
        "--health-file",
        "GRAFLOW_HEALTH_FILE",
        "touch this file after every heartbeat (for `graflow-worker status --self`)",
        metavar="PATH",
    ),
    Option(
        "--secret-key",
        "GRAFLOW_SECRET_KEY",
        "shared HMAC key: verify everything read from Redis before unpickling it, sign what is written; "
        "KEY1,KEY2 rotates (the first signs, any verifies). Required unless Redis is on loopback or "
        "--allow-unsigned (prefer the variable: flags show in ps)",
        metavar="KEY[,KEY...]",
    ),
    Option(
        "--allow-unsigned",
        "GRAFLOW_ALLOW_UNSIGNED",
        "run without a secret key on a Redis that is not on loopback: whoever can write to that Redis "
        "can then run code in this worker",
        switch=True,
    ),
    Option(
        "--scheduler",
        "GRAFLOW_SCHEDULER",
        "also fire the schedules of the key prefix (`graflow schedule`); any number of workers may, "
        "each tick fires once",
        switch=True,
    ),
    Option(
        "--log-level",
        "GRAFLOW_LOG_LEVEL",
        "DEBUG, INFO, WARNING or ERROR",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    Option(
        "--log-format",
        "GRAFLOW_LOG_FORMAT",
        "json (one object per line) or console",
        default="json",
        choices=("json", "console"),
    ),
)


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    options: Sequence[Option],
    environ: Mapping[str, str] | None = None,
) -> None:
    """Add ``options`` to ``parser``, each defaulting to its environment variable when set."""
    env = os.environ if environ is None else environ
    for option in options:
        default = env.get(option.env, option.default)
        if default == "":
            default = option.default
        shown = (
            f" (env {option.env}"
            + (f"; default {option.default}" if option.default is not None else "")
            + ")"
        )
        if option.switch:
            on = str(default or "").strip().lower() in ("1", "true", "yes", "on")
            parser.add_argument(
                option.flag, dest=option.dest, action="store_true", default=on, help=option.help + shown
            )
            continue
        from_env = isinstance(default, str) and default != option.default
        parser.add_argument(
            option.flag,
            *option.aliases,
            dest=option.dest,
            type=_naming(option.env, default, option.type) if from_env else option.type,
            default=default,
            choices=option.choices,
            metavar=option.metavar,
            help=option.help + shown,
        )


def _naming(variable: str, value: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, whose refusal of ``value`` says it came from ``variable`` (argparse names the flag only)."""

    def checked(text: str) -> Any:
        try:
            return convert(text)
        except argparse.ArgumentTypeError as exc:
            if text != value:
                raise
            raise argparse.ArgumentTypeError(f"{exc} (from ${variable}; fix or unset it)") from None

    checked.__name__ = getattr(convert, "__name__", "value")  # argparse shows it for a ValueError
    return checked


def redis_url(args: argparse.Namespace) -> str:
    """The URL to connect to: ``--redis-url``, else one built from host, port and db."""
    if args.redis_url:
        return str(args.redis_url)
    return f"redis://{args.redis_host}:{args.redis_port}/{args.redis_db}"


def build_queue(args: argparse.Namespace, **overrides: Any) -> DistributedTaskQueue:
    """The Redis queue the settings point at (graflow-redis's ``DistributedTaskQueue``)."""
    # redis loads only once a command needs the queue: building the parsers must stay light.
    from graflow_redis.queue import DistributedTaskQueue

    options: dict[str, Any] = {"redis_url": redis_url(args), "key_prefix": args.key_prefix}
    if getattr(args, "visibility_timeout", None) is not None:
        options["visibility_timeout"] = args.visibility_timeout
    if getattr(args, "max_deliveries", None) is not None:
        options["max_deliveries"] = args.max_deliveries
    if getattr(args, "secret_key", None):
        options["secret_key"] = args.secret_key
    if getattr(args, "allow_unsigned", False):
        options["allow_unsigned"] = True
    if getattr(args, "queues", None):
        options["queues"] = args.queues
    options.update(overrides)
    return DistributedTaskQueue(**options)
