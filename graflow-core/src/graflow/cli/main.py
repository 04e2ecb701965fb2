"""``graflow``: the entry point of the command line (console script and ``python -m graflow``).

The parser is built from the ``graflow_cli_commands`` hook, so the core commands and
those of installed plugins (``graflow-worker``, ...) are added the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from graflow import __version__
from graflow.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, WorkflowLoadError
from graflow.cli.commands import add_core_commands
from graflow.exceptions import (
    CheckpointError,
    ConfigError,
    PluginNotInstalledError,
    RunInUseError,
    RunNotFoundError,
    StateStoreError,
)
from graflow.hitl.types import FeedbackError
from graflow.plugins import get_plugin_manager
from graflow.tracebacks import user_traceback

__all__ = ["build_parser", "main"]

_EXAMPLES: Final = """\
examples:
  graflow run flows/etl.py                     run the workflow defined in flows/etl.py
  graflow run flows/etl.py:nightly --set limit=100
  graflow run flows/etl.py --durable           keep the run's state, so it can be resumed
  graflow resume RUN_ID                        carry a stopped durable run on
  graflow runs                                 the runs kept in ./.graflow
  graflow feedback list                        questions tasks asked, waiting for an answer
  graflow graph flows/etl.py --format dot      the graph, without running it
  graflow plugins                              what is installed, and what each plugin adds

`graflow COMMAND --help` describes a command.

exit status: 0 success, 1 a failed run (or an unusable state store), 2 bad usage,
3 a suspended run, 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    """The ``graflow`` parser with every subcommand plugins contribute (the core ones included)."""
    parser = argparse.ArgumentParser(
        prog="graflow",
        description="Graflow: run and inspect workflows of Python tasks.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"graflow {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    try:
        get_plugin_manager().hook.graflow_cli_commands(subparsers=subparsers)
    except Exception as exc:  # a plugin's commands must not take the core ones down
        _error(
            f"warning: a plugin failed to add its commands ({type(exc).__name__}: {exc}); "
            "`graflow plugins` shows what is installed"
        )
        if "run" not in subparsers.choices:
            add_core_commands(subparsers)
    return parser


def _error(message: str) -> None:
    sys.stderr.write(f"graflow: {message}\n")


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return the exit status.

    0: success; 1: the run failed (or the workflow file raised while loading, or its state
    store cannot be used, or another driver holds it); 2: bad usage (an unknown run id too);
    3 (:data:`~graflow.cli.EXIT_SUSPENDED`): the run suspended, waiting for an answer.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, and usage errors (already printed)
        return _exit_code(exc.code)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_usage(sys.stderr)
        _error("error: choose a command (run, graph, plugins, ...); `graflow --help` lists them")
        return EXIT_USAGE
    try:
        return int(func(args))
    except SystemExit as exc:
        return _exit_code(exc.code)
    except (ConfigError, PluginNotInstalledError, RunNotFoundError, FeedbackError) as exc:
        _error(f"error: {exc}")
        return EXIT_USAGE
    except (RunInUseError, StateStoreError, CheckpointError) as exc:  # their message says what to do
        _error(f"error: {exc}")
        return EXIT_FAILED
    except WorkflowLoadError as exc:
        if exc.__cause__ is not None:
            sys.stderr.write(user_traceback(exc.__cause__))
        _error(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
