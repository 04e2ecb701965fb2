"""The core subcommands ``run``, ``graph`` and ``plugins``, added through the ``graflow_cli_commands`` hook.

Each parser sets ``func=callable(args) -> int``; the work (and rich, the console
library) is imported only when the subcommand runs, so ``graflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from graflow.cli import EXIT_OK
from graflow.core.render import to_ascii, to_dot, to_mermaid
from graflow.plugins import get_plugin_manager, hookimpl

__all__ = ["add_core_commands"]

_RUN_EXAMPLES: Final = """\
examples:
  graflow run flows/etl.py                     the only workflow defined in the file
  graflow run flows/etl.py:nightly             the workflow named (or bound to the variable) "nightly"
  graflow run flows/etl.py --set day=2024-05-01 --set limit=100
  graflow run flows/etl.py --queue redis --redis-url redis://localhost:6379/0

exit status: 0 the run succeeded, 1 it failed, 2 bad usage (unknown option, missing file,
unknown workflow, malformed --set)."""

_GRAPH_EXAMPLES: Final = """\
examples:
  graflow graph flows/etl.py                   Mermaid (paste into a Markdown ```mermaid block)
  graflow graph flows/etl.py --format dot | dot -Tpng -o etl.png
  graflow graph flows/etl.py:nightly --format ascii"""

_TARGET_HELP: Final = (
    'a Python file defining a workflow at module level (`with workflow("name") as wf:`); '
    "add :NAME to choose one by workflow name or variable when it defines several"
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def add_core_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``run``, ``graph`` and ``plugins`` on the ``graflow`` parser."""
    run = subparsers.add_parser(
        "run",
        help="run a workflow, showing progress and a per-task summary",
        description="Run a workflow defined in a Python file; print progress while it runs and a "
        "per-task summary (status, duration, handler, worker) at the end.",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("target", metavar="FILE[:WORKFLOW]", help=_TARGET_HELP)
    run.add_argument(
        "--queue",
        default="memory",
        metavar="memory|redis",
        help="where tasks are queued: in this process (memory, the default) or on a worker fleet "
        "(redis, needs graflow-redis)",
    )
    run.add_argument("--redis-url", metavar="URL", help="the Redis server of --queue redis")
    run.add_argument(
        "--max-steps", type=_positive_int, metavar="N", help="stop the run after N task executions"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="put KEY in the run's channel before it starts (repeatable); VALUE is read as JSON "
        "when it parses (10, true, [1,2], '\"text\"'), else as text",
    )
    run.set_defaults(func=_run)

    graph = subparsers.add_parser(
        "graph",
        help="print a workflow's graph without running it",
        description="Print the graph of a workflow defined in a Python file, without running it.",
        epilog=_GRAPH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    graph.add_argument("target", metavar="FILE[:WORKFLOW]", help=_TARGET_HELP)
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot", "ascii"),
        default="mermaid",
        help="mermaid (default), Graphviz dot, or plain text",
    )
    graph.set_defaults(func=_graph)

    plugins = subparsers.add_parser(
        "plugins",
        help="list installed plugins and what each contributes",
        description="List Graflow's plugins (the built-ins, and every installed distribution with a "
        "`graflow` entry point): the handlers, backends, coordinators and hooks each contributes, "
        "and the error of any that failed to load.",
    )
    plugins.set_defaults(func=_plugins)


@hookimpl
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_core_commands(subparsers)


def _run(args: argparse.Namespace) -> int:
    from graflow.cli.run import run_command  # lazy: loads the engine and rich

    return run_command(args)


def _graph(args: argparse.Namespace) -> int:
    from graflow.cli.loader import WorkflowTarget, loaded_workflow  # lazy: loads the kernel

    renderers = {"mermaid": to_mermaid, "dot": to_dot, "ascii": to_ascii}
    with loaded_workflow(WorkflowTarget.parse(args.target)) as wf:
        text = renderers[args.format](wf.graph)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    from graflow.cli.report import make_console, plugins_table, print_table  # lazy: rich

    print_table(make_console(sys.stdout), plugins_table(get_plugin_manager().plugins()))
    return EXIT_OK
