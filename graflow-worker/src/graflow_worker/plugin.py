"""graflow-worker's hook implementations: ``graflow worker`` and ``graflow fleet``.

Registered through the entry point ``worker = graflow_worker.plugin`` (group ``graflow``),
so an installed graflow-worker adds two subcommands to the ``graflow`` command:

* ``graflow worker [options]``: run a worker (the same options as ``graflow-worker``);
* ``graflow fleet [options]``: the live fleet (``graflow-worker status``).
"""

from __future__ import annotations

import argparse

from graflow.plugins import hookimpl


@hookimpl
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from graflow_worker import cli

    worker = subparsers.add_parser(
        "worker",
        help="run a worker of the fleet (graflow-worker)",
        description="Run a Graflow worker: takes tasks from the Redis queue and runs them.",
    )
    cli.add_worker_arguments(worker)
    worker.set_defaults(func=cli.run)

    fleet = subparsers.add_parser(
        "fleet",
        help="show the live worker fleet (graflow-worker status)",
        description="Show the live fleet: workers, what each runs, counters, queue depth, dead letters.",
    )
    cli.add_status_arguments(fleet)
    fleet.set_defaults(func=cli.status)
