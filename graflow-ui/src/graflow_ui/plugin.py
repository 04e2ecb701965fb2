"""graflow-ui's hook implementation: ``graflow ui`` (entry point ``ui = graflow_ui.plugin``).

Loaded by every ``graflow`` command, so it imports nothing heavy: the web stack is
imported only when ``graflow ui`` runs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Final

from graflow.cli.stores import add_store_options
from graflow.plugins import hookimpl
from graflow_ui.settings import DEFAULT_HOST, DEFAULT_PORT, ENV_TOKEN

_EXAMPLES: Final = f"""\
examples:
  graflow ui                                       the runs kept in ./.graflow, at http://127.0.0.1:{DEFAULT_PORT}/
  graflow ui --state-dir /srv/flows/state
  graflow ui --redis-url redis://localhost:6379/0 --key-prefix etl     runs, fleet and dead letters
  GRAFLOW_UI_TOKEN=s3cret graflow ui --host 0.0.0.0                      reachable from other machines

It binds to loopback unless told otherwise, and a --host other than loopback needs a token:
every request then carries it (`Authorization: Bearer TOKEN`; the pages ask for it once).

exit status: 1 the store cannot be used, 2 bad usage (a non-loopback --host without a token,
a port already in use, an unknown option), 130 stopped with Ctrl-C, as every graflow command."""


@hookimpl
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ui = subparsers.add_parser(
        "ui",
        help="serve the dashboard and JSON API over a state store",
        description="Serve a web dashboard and a JSON API over one state store: runs, live run graphs, "
        "questions to answer, and (over Redis) the worker fleet and its dead letters.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_options(ui)
    ui.add_argument("--host", default=DEFAULT_HOST, help=f"the address to listen on (default {DEFAULT_HOST})")
    ui.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the port to listen on (default {DEFAULT_PORT})"
    )
    ui.add_argument(
        "--token",
        metavar="T",
        help=f"require this token on every request (env {ENV_TOKEN}); needed for a non-loopback --host",
    )
    ui.set_defaults(func=_ui_command)


def _ui_command(args: argparse.Namespace) -> int:
    # lazy: FastAPI and uvicorn load only when the dashboard is served
    command = importlib.import_module("graflow_ui.cli").ui_command
    return int(command(args))
