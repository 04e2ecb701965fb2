"""The core subcommands, added through the ``graflow_cli_commands`` hook: ``run``, ``graph``,
``plugins``, for durable runs ``resume``, ``rerun`` and ``runs``, and ``feedback``.

Each parser sets ``func=callable(args) -> int``; the work (and rich, the console
library) is imported only when the subcommand runs, so ``graflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Callable
from typing import Final

from graflow.cli import EXIT_OK, EXIT_USAGE, RUNS_SHOWN
from graflow.cli.stores import (
    ALLOW_UNSIGNED_HELP,
    DEFAULT_KEY_PREFIX,
    ENV_KEY_PREFIX,
    ENV_REDIS_URL,
    add_store_options,
)
from graflow.core.render import to_ascii, to_dot, to_mermaid
from graflow.plugins import get_plugin_manager, hookimpl
from graflow.state.records import RunStatus

__all__ = ["add_core_commands"]

_RUN_EXAMPLES: Final = """\
examples:
  graflow run flows/etl.py                     the only workflow defined in the file
  graflow run flows/etl.py:nightly             the workflow named (or bound to the variable) "nightly"
  graflow run flows/etl.py --set day=2024-05-01 --set limit=100
  graflow run flows/etl.py --durable           keep the run in ./.graflow: `graflow resume` carries it on
  graflow run flows/etl.py --state-dir /srv/flows/state
  graflow run flows/etl.py --queue redis --redis-url redis://localhost:6379/0 --key-prefix etl

The first line is `run <run id>`, printed before any task starts.

exit status: 0 the run succeeded, 1 it failed, 2 bad usage (unknown option, missing file,
unknown workflow, malformed --set), 3 the run suspended: a task waits for a person's answer
(`graflow feedback list`), and `graflow resume` carries it on once answered."""

_STORE_EXIT: Final = """\
exit status: 0 the run succeeded, 1 it failed (or its store cannot be used, or another live
driver holds it), 2 bad usage (unknown option, unknown run id or task), 3 the run suspended
again: a task waits for a person's answer (`graflow feedback list`)."""

_RESUME_EXAMPLES: Final = f"""\
examples:
  graflow resume 3f2a9c0e...                       a run kept in ./.graflow (or $GRAFLOW_STATE_DIR)
  graflow resume 3f2a9c0e... --state-dir /srv/flows/state
  graflow resume 3f2a9c0e... --redis-url redis://localhost:6379/0 --key-prefix etl

Steps the run recorded are not run again (the summary lists them as reused); a run
that already succeeded shows its result and runs nothing. No workflow file is needed:
the graph is in the store. `graflow runs` lists the ids.

{_STORE_EXIT}"""

_RERUN_EXAMPLES: Final = f"""\
examples:
  graflow rerun 3f2a9c0e... --from transform      transform and everything after it run again
  graflow rerun 3f2a9c0e... --from load --state-dir /srv/flows/state

The rerun is a new run (its id is the first line); the old run is left as it was.

{_STORE_EXIT}"""

_RUNS_EXAMPLES: Final = f"""\
examples:
  graflow runs                                     the {RUNS_SHOWN} newest runs in ./.graflow
  graflow runs --status failed --workflow etl
  graflow runs --json | jq -r '.[] | select(.status == "running") | .run_id'
  graflow runs show 3f2a9c0e...                    one run, task by task
  graflow runs --state-dir /srv/flows/state show 3f2a9c0e... --json

Times are UTC (ISO 8601). --json lists every run unless --limit is given, each with
run_id, workflow, status, started_at, finished_at, tasks_done, tasks_total and error."""

_SHOW_EXAMPLES: Final = """\
examples:
  graflow runs show 3f2a9c0e...
  graflow runs show 3f2a9c0e... --state-dir /srv/flows/state --json"""

_FEEDBACK_EXAMPLES: Final = """\
examples:
  graflow feedback list                            questions waiting for an answer, in ./.graflow
  graflow feedback list --run 3f2a9c0e... --json   one run's, for scripts
  graflow feedback show 9c1e...                    one question, answered or not
  graflow feedback respond 9c1e... --approve --reason "looks good" --by alice
  graflow feedback respond 9c1e... --select staging
  graflow feedback list --redis-url redis://localhost:6379/0 --key-prefix etl

A task waiting for the answer carries on at once; a run that suspended waiting for it
is carried on by `graflow resume RUN_ID`."""

_RESPOND_EXAMPLES: Final = """\
examples:
  graflow feedback respond 9c1e... --approve
  graflow feedback respond 9c1e... --reject --reason "not on a Friday"
  graflow feedback respond 9c1e... --text "use the March figures"
  graflow feedback respond 9c1e... --select staging
  graflow feedback respond 9c1e... --select a --select c         (a multi-selection)
  graflow feedback respond 9c1e... --data '{"threshold": 0.8}'   (a custom request)

The answer must fit the question: its kind, and options it offers. The first answer
stands. exit status: 0 answered, 1 answered already, 2 bad usage (unknown id, an answer
that does not fit)."""

_SCHEDULE_EXAMPLES: Final = """\
examples:
  graflow schedule add nightly flows/etl.py:etl --cron "0 2 * * *" --timezone Europe/Paris \\
      --redis-url redis://localhost:6379/0 --key-prefix etl
  graflow schedule add poll flows/poll.py --every 300 --set source=s3 --state-dir /srv/flows/state
  graflow schedule add report flows/report.py --after nightly --redis-url ... --key-prefix etl
  graflow schedule list [--json]
  graflow schedule pause nightly        graflow schedule resume nightly
  graflow schedule remove nightly

Schedules fire while a scheduler watches their store: `graflow scheduler` with the same
store options, or `graflow-worker --scheduler` on a fleet. Each tick fires once however
many schedulers run; ticks missed while none ran fire once when one comes back. Each
firing is a durable run (`graflow runs` lists it). Times are UTC (ISO 8601)."""

_SCHEDULER_EXAMPLES: Final = """\
examples:
  graflow scheduler --redis-url redis://localhost:6379/0 --key-prefix etl
  graflow scheduler --state-dir /srv/flows/state

Runs until Ctrl-C or SIGTERM, then waits for the runs it started. Any number of
schedulers may watch one store: each tick fires once."""

_GRAPH_EXAMPLES: Final = """\
examples:
  graflow graph flows/etl.py                   Mermaid (paste into a Markdown ```mermaid block)
  graflow graph flows/etl.py --format dot | dot -Tpng -o etl.png
  graflow graph flows/etl.py:nightly --format ascii"""

#: Where descriptions wrap: the width of the examples below them.
_WIDTH: Final = 90

_TARGET_HELP: Final = (
    'a Python file defining a workflow at module level (`with workflow("name") as wf:`); '
    "add :NAME to choose one by workflow name or variable when it defines several"
)


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="on failure, print the whole traceback (Graflow's frames and the worker's too); without it a "
        "Graflow error is one line, and a task's own exception shows the traceback through its code",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    *,
    help: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """A subcommand whose epilog (examples, exit statuses) keeps its line breaks.

    The raw formatter would print the description as one line too, so it is wrapped here.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, _WIDTH),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_core_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``run``, ``graph``, ``plugins`` and the durable-run commands on the ``graflow`` parser."""
    run = _command(
        subparsers,
        "run",
        help="run a workflow, showing progress and a per-task summary",
        description="Run a workflow defined in a Python file; print progress while it runs and a "
        "per-task summary (status, duration, handler, worker) at the end.",
        epilog=_RUN_EXAMPLES,
    )
    run.add_argument("target", metavar="FILE[:WORKFLOW]", help=_TARGET_HELP)
    run.add_argument(
        "--queue",
        default="memory",
        metavar="memory|redis",
        help="where tasks are queued: in this process (memory, the default) or on a worker fleet "
        "(redis, needs graflow-redis)",
    )
    run.add_argument(
        "--redis-url", metavar="URL", help=f"the Redis server of --queue redis (env {ENV_REDIS_URL})"
    )
    run.add_argument(
        "--key-prefix",
        metavar="P",
        help=f"the Redis key prefix of --queue redis; workers must use the same (env {ENV_KEY_PREFIX}; "
        f"default {DEFAULT_KEY_PREFIX})",
    )
    run.add_argument("--allow-unsigned", action="store_true", help=ALLOW_UNSIGNED_HELP)
    run.add_argument(
        "--durable",
        action="store_true",
        help="keep the run's state in a local state directory, so `graflow resume RUN_ID` can carry "
        "it on after a crash, a kill or a failure",
    )
    run.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where --durable keeps the run (implies --durable; env GRAFLOW_STATE_DIR; default ./.graflow)",
    )
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
    _add_verbose(run)
    run.set_defaults(func=_deferred("graflow.cli.run", "run_command"))

    graph = _command(
        subparsers,
        "graph",
        help="print a workflow's graph without running it",
        description="Print the graph of a workflow defined in a Python file, without running it.",
        epilog=_GRAPH_EXAMPLES,
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
    add_durable_commands(subparsers)


def add_durable_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``resume``, ``rerun`` and ``runs`` (with ``runs show``): runs kept in a state store."""
    resume = _command(
        subparsers,
        "resume",
        help="carry on a durable run from where it stopped",
        description="Carry on a run kept in a state store (a durable run whose driver stopped, died or "
        "failed), with the same progress and summary as `graflow run`.",
        epilog=_RESUME_EXAMPLES,
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="the run's id (`graflow runs` lists them)")
    add_store_options(resume)
    _add_verbose(resume)
    resume.set_defaults(func=_deferred("graflow.cli.resume", "resume_command"))

    rerun = _command(
        subparsers,
        "rerun",
        help="run a kept run again from one task, as a new run",
        description="Run TASK and everything downstream of it again as a new run, reusing every other "
        "result of RUN_ID.",
        epilog=_RERUN_EXAMPLES,
    )
    rerun.add_argument("run_id", metavar="RUN_ID", help="the run to replay")
    rerun.add_argument(
        "--from", dest="from_task", metavar="TASK", required=True, help="the first task to run again"
    )
    add_store_options(rerun)
    _add_verbose(rerun)
    rerun.set_defaults(func=_deferred("graflow.cli.resume", "rerun_command"))

    runs = _command(
        subparsers,
        "runs",
        help="list the runs a state store keeps",
        description="List the runs kept in a state store, newest first; `graflow runs show RUN_ID` shows "
        "one run task by task.",
        epilog=_RUNS_EXAMPLES,
    )
    runs.add_argument(
        "--status", choices=[str(status) for status in RunStatus], help="only runs in this state"
    )
    runs.add_argument("--workflow", metavar="NAME", help="only runs of this workflow")
    runs.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help=f"at most N runs, newest first (default {RUNS_SHOWN}; with --json, every run)",
    )
    runs.add_argument("--json", action="store_true", help="print a JSON list, for scripts")
    add_store_options(runs)
    runs.set_defaults(func=_deferred("graflow.cli.runs", "runs_command"))
    shows = runs.add_subparsers(title="commands", metavar="COMMAND")
    show = _command(
        shows,
        "show",
        help="one run, task by task",
        description="Show one run task by task (status, occurrences, worker, duration, finished at) "
        "and the run's error, from what its store recorded.",
        epilog=_SHOW_EXAMPLES,
    )
    show.add_argument("run_id", metavar="RUN_ID", help="the run's id")
    show.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, for scripts"
    )
    add_store_options(show, nested=True)
    show.set_defaults(func=_deferred("graflow.cli.runs", "show_command"))
    add_feedback_commands(subparsers)
    add_schedule_commands(subparsers)


def add_schedule_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``schedule add|list|remove|pause|resume`` and ``scheduler`` (SPEC section 19)."""
    schedule = _command(
        subparsers,
        "schedule",
        help="workflows that start on a cron expression, every N seconds, or after another",
        description="Keep schedules in a store (Redis for a fleet, a state directory on one machine); "
        "schedulers watching it start their runs.",
        epilog=_SCHEDULE_EXAMPLES,
    )
    schedule.set_defaults(func=_usage(schedule, "schedule", "add, list, remove, pause or resume"))
    commands = schedule.add_subparsers(title="commands", metavar="COMMAND")
    add = _command(
        commands,
        "add",
        help="add a schedule",
        description="Add a schedule: NAME runs the workflow of FILE[:WORKFLOW] on --cron, --every or --after.",
        epilog=_SCHEDULE_EXAMPLES,
    )
    add.add_argument("name", metavar="NAME", help="the schedule's name (a word)")
    add.add_argument("target", metavar="FILE[:WORKFLOW]", help=_TARGET_HELP)
    when = add.add_argument_group("when (exactly one)")
    when.add_argument("--cron", metavar="EXPR", help='a cron expression: "minute hour day month weekday"')
    when.add_argument("--every", metavar="SECONDS", type=_positive_int, help="every SECONDS seconds")
    when.add_argument("--after", metavar="OTHER", help="after each successful run of schedule OTHER")
    add.add_argument(
        "--timezone", metavar="TZ", default="UTC", help="with --cron: an IANA timezone (default UTC)"
    )
    add.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a channel value each run starts with (repeatable)",
    )
    add.add_argument(
        "--queue",
        choices=["redis", "memory"],
        help="where its tasks run: the worker fleet (redis, the default for Redis) or the scheduler's "
        "process (memory, the only choice in a state directory)",
    )
    add.add_argument("--replace", action="store_true", help="replace a schedule of the same name")
    add_store_options(add)
    add.set_defaults(func=_deferred("graflow.cli.schedule", "add_command"))
    listing = _command(
        commands,
        "list",
        help="the schedules, their next and last runs",
        description="List the schedules of a store.",
        epilog=_SCHEDULE_EXAMPLES,
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list, for scripts")
    add_store_options(listing)
    listing.set_defaults(func=_deferred("graflow.cli.schedule", "list_command"))
    for name, verb, what in (
        ("remove", "remove_command", "forget a schedule (the runs it fired are kept)"),
        ("pause", "pause_command", "pause a schedule: its ticks pass without a run"),
        ("resume", "resume_command", "resume a paused schedule from its next tick"),
    ):
        command = _command(
            commands, name, help=what, description=what[0].upper() + what[1:] + ".", epilog=_SCHEDULE_EXAMPLES
        )
        command.add_argument("name", metavar="NAME", help="the schedule's name")
        add_store_options(command)
        command.set_defaults(func=_deferred("graflow.cli.schedule", verb))
    scheduler = _command(
        subparsers,
        "scheduler",
        help="fire the schedules of a store until stopped",
        description="Watch a store's schedules and start a durable run for each tick, until Ctrl-C or SIGTERM.",
        epilog=_SCHEDULER_EXAMPLES,
    )
    scheduler.add_argument(
        "--poll",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="longest pause between looks at the store (1)",
    )
    add_store_options(scheduler)
    scheduler.set_defaults(func=_deferred("graflow.cli.schedule", "scheduler_command"))


def add_feedback_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``feedback list|show|respond``: the questions tasks ask people (SPEC section 17)."""
    feedback = _command(
        subparsers,
        "feedback",
        help="questions tasks asked people: list them, answer them",
        description="List the questions tasks asked people (ctx.request_feedback) that wait for an answer "
        "in a state store, and answer them.",
        epilog=_FEEDBACK_EXAMPLES,
    )
    feedback.set_defaults(func=_usage(feedback, "feedback", "list, show or respond"))
    commands = feedback.add_subparsers(title="commands", metavar="COMMAND")
    listing = _command(
        commands,
        "list",
        help="the questions waiting for an answer, oldest first",
        description="List the questions waiting for an answer, oldest first.",
        epilog=_FEEDBACK_EXAMPLES,
    )
    listing.add_argument("--run", metavar="RUN_ID", help="only this run's questions")
    listing.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (feedback_id, run_id, task_id, feedback_type, prompt, options, created_at, ...)",
    )
    add_store_options(listing)
    listing.set_defaults(func=_deferred("graflow.cli.feedback", "list_command"))
    show = _command(
        commands,
        "show",
        help="one question, answered or not",
        description="Show one question and, once given, its answer.",
        epilog=_FEEDBACK_EXAMPLES,
    )
    show.add_argument("feedback_id", metavar="ID", help="the question's id (`graflow feedback list`)")
    show.add_argument("--json", action="store_true", help="print JSON, for scripts")
    add_store_options(show)
    show.set_defaults(func=_deferred("graflow.cli.feedback", "show_command"))
    respond = _command(
        commands,
        "respond",
        help="answer a question",
        description="Answer a question: with exactly one of --approve/--reject, --text, --select or --data, "
        "as its kind asks.",
        epilog=_RESPOND_EXAMPLES,
    )
    respond.add_argument("feedback_id", metavar="ID", help="the question's id (`graflow feedback list`)")
    answer = respond.add_argument_group("the answer (exactly one)")
    answer.add_argument(
        "--approve", dest="approved", action="store_const", const=True, help="yes, to an approval"
    )
    answer.add_argument(
        "--reject", dest="approved", action="store_const", const=False, help="no, to an approval"
    )
    answer.add_argument("--text", metavar="T", help="the text, to a text request")
    answer.add_argument(
        "--select",
        metavar="S",
        action="append",
        help="one of the options (repeat it for a multi-selection)",
    )
    answer.add_argument("--data", metavar="JSON", help="a JSON object, to a custom request")
    respond.add_argument("--reason", metavar="R", help="why (recorded with the answer)")
    respond.add_argument("--by", metavar="NAME", help="who answers (default: user@host)")
    add_store_options(respond)
    respond.set_defaults(func=_deferred("graflow.cli.feedback", "respond_command"))


@hookimpl
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_core_commands(subparsers)


def _graph(args: argparse.Namespace) -> int:
    from graflow.cli.loader import WorkflowTarget, loaded_workflow  # lazy: loads the kernel

    renderers = {"mermaid": to_mermaid, "dot": to_dot, "ascii": to_ascii}
    with loaded_workflow(WorkflowTarget.parse(args.target)) as wf:
        text = renderers[args.format](wf.graph)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def _deferred(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``module.name``, imported only when it runs.

    The commands load the engine, the state store and rich; `graflow --help` needs none of them.
    """

    def command(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), name)(args))

    return command


def _usage(parser: argparse.ArgumentParser, name: str, commands: str) -> Callable[[argparse.Namespace], int]:
    """What ``graflow NAME`` without a command does: say which commands there are."""

    def usage(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"graflow {name}: error: choose a command: {commands}\n")
        return EXIT_USAGE

    return usage


def _plugins(args: argparse.Namespace) -> int:
    from graflow.cli.report import make_console, plugins_table, print_table  # lazy: rich

    print_table(make_console(sys.stdout), plugins_table(get_plugin_manager().plugins()))
    return EXIT_OK
