"""The ``graflow`` command line (SPEC section 14): run, graph, plugins, exit statuses, messages."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graflow.cli.progress import PLUGIN_NAME
from graflow.plugins import get_plugin_manager, hookimpl
from tests.core.cli.output import Run, summary_rows

PIPELINE = """
from pathlib import Path

from graflow import task, workflow

with workflow("pipeline") as pipeline:

    @task
    def fetch():
        return [3, 1, 2]

    @task
    def total(limit=100):
        return min(6, limit)

    @task
    def biggest():
        return 3

    @task(inject_context=True)
    def report(ctx):
        return {"total": ctx.get_result("total"), "biggest": ctx.get_result("biggest")}

    fetch >> (total | biggest).set_group_name("stats") >> report

if __name__ == "__main__":
    Path(__file__).with_name("main-block-ran").write_text("yes")
"""

FAILING = """
from graflow import task, workflow

with workflow("failing") as failing:

    @task
    def prepare():
        return 1

    @task
    def explode():
        raise ValueError("bad row 7")

    @task
    def publish():
        return "published"

    prepare >> explode >> publish
"""

TWO_WORKFLOWS = """
from graflow import task, workflow

with workflow("daily") as first:

    @task
    def day_task():
        return "day"

with workflow("weekly") as second:

    @task
    def week_task():
        return "week"
"""

EARLY_EXIT = """
from graflow import task, workflow

with workflow("gatekeeper") as gatekeeper:

    @task(inject_context=True)
    def gate(ctx):
        ctx.terminate_workflow("nothing new today")
        return "stopped"

    @task
    def process():
        return "processed"

    @task
    def notify():
        return "notified"

    gate >> process >> notify
"""

CHANNEL_ECHO = """
from graflow import task, workflow

with workflow("echo") as echo:

    @task
    def show(limit, name, flags, quoted, note="none"):
        return {"limit": limit, "name": name, "flags": flags, "quoted": quoted, "note": note}
"""


# --- run: success ---------------------------------------------------------------------


def test_run_succeeds_with_exit_0_and_lists_every_task_with_its_status(write, cli: Run) -> None:
    path = write("pipeline.py", PIPELINE)

    code, out, err = cli("run", path)

    assert code == 0, err
    rows = summary_rows(out)
    assert list(rows) == ["fetch", "stats", "total", "biggest", "report"]
    for task_id in ("fetch", "total", "biggest", "report"):
        status, runs, _duration, handler, worker = rows[task_id]
        assert (status, runs, handler, worker) == ("succeeded", "1", "direct", "local")
    assert rows["stats"][0] == "succeeded"
    assert rows["stats"][3] == "threading"
    assert "Workflow 'pipeline' succeeded" in out
    assert "4 succeeded, 0 failed, 0 skipped" in out
    assert "Result: {'total': 6, 'biggest': 3}" in out


def test_run_shows_progress_lines_in_execution_order(write, cli: Run) -> None:
    path = write("pipeline.py", PIPELINE)

    _, out, _ = cli("run", path)

    lines = [line.split()[:2] for line in out.splitlines() if line.startswith("  ")]
    assert lines[:2] == [["started", "fetch"], ["succeeded", "fetch"]]
    assert lines[-2:] == [["started", "report"], ["succeeded", "report"]]
    assert ["started", "group"] in lines
    assert lines.index(["succeeded", "total"]) < lines.index(["started", "report"])


def test_run_output_is_plain_text_when_stdout_is_not_a_terminal(write, cli: Run) -> None:
    _, out, _ = cli("run", write("pipeline.py", PIPELINE))

    assert "\x1b[" not in out
    assert out.isascii()


def test_run_does_not_execute_the_files_main_block(write, cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("run", write("pipeline.py", PIPELINE))

    assert code == 0, err
    assert not (tmp_path / "main-block-ran").exists()


def test_run_unregisters_its_progress_plugin_afterwards(write, cli: Run) -> None:
    cli("run", write("failing.py", FAILING))

    assert PLUGIN_NAME not in [info.name for info in get_plugin_manager().plugins()]


def test_run_from_a_real_subprocess_exits_0_and_prints_the_summary(write) -> None:
    path = write("pipeline.py", PIPELINE)

    done = subprocess.run(
        [sys.executable, "-m", "graflow", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    rows = summary_rows(done.stdout)
    assert {task_id: row[0] for task_id, row in rows.items()} == {
        "fetch": "succeeded",
        "stats": "succeeded",
        "total": "succeeded",
        "biggest": "succeeded",
        "report": "succeeded",
    }


def test_the_worker_column_names_the_child_process_that_ran_each_multiprocessing_member(
    write, cli: Run
) -> None:
    path = write(
        "pool.py",
        """
        import os

        from graflow import CoordinationBackend, task, workflow

        with workflow("pool") as pool:

            @task
            def left():
                return os.getpid()

            @task
            def right():
                return os.getpid()

            @task(inject_context=True)
            def compare(ctx):
                return ctx.get_result("left") != os.getpid()

            (left | right).with_execution(backend=CoordinationBackend.MULTIPROCESSING) >> compare
        """,
    )

    code, out, err = cli("run", path)

    assert code == 0, err
    rows = summary_rows(out)
    driver = f"{socket.gethostname()}:{os.getpid()}"
    for member in ("left", "right"):
        host, _, pid = rows[member][4].partition(":")
        assert host == socket.gethostname() and pid.isdigit(), rows[member]
        assert rows[member][4] != driver
    assert rows["compare"][4] == "local"
    assert "Result: True" in out


def test_a_retried_task_counts_every_attempt(write, cli: Run) -> None:
    path = write(
        "flaky.py",
        """
        from graflow import RetryPolicy, task, workflow

        calls = []

        with workflow("flaky") as flaky:

            @task(retry_policy=RetryPolicy(max_retries=2, initial_interval=0.0))
            def unreliable():
                calls.append(1)
                if len(calls) == 1:
                    raise ConnectionError("first call drops")
                return len(calls)
        """,
    )

    code, out, err = cli("run", path)

    assert code == 0, err
    assert summary_rows(out)["unreliable"][:2] == ["succeeded", "2"]
    assert "failed    unreliable [attempt 1/3" in out
    assert "succeeded unreliable [attempt 2/3" in out


def test_a_task_added_at_run_time_is_listed_after_the_task_that_added_it(write, cli: Run) -> None:
    path = write(
        "dynamic.py",
        """
        from graflow import task, workflow
        from graflow.core.task import TaskWrapper

        with workflow("adaptive") as adaptive:

            @task(inject_context=True)
            def inspect(ctx):
                ctx.next_task(TaskWrapper("cleanup", lambda: "cleaned"))
                return "dirty"

            @task
            def load():
                return "loaded"

            inspect >> load
        """,
    )

    code, out, err = cli("run", path)

    assert code == 0, err
    rows = summary_rows(out)
    assert list(rows) == ["inspect", "cleanup", "load"]
    assert {row[0] for row in rows.values()} == {"succeeded"}


# --- run: failures --------------------------------------------------------------------


def test_a_failing_task_exits_1_and_the_error_names_the_task(write, cli: Run) -> None:
    code, out, err = cli("run", write("failing.py", FAILING))

    assert code == 1
    assert err.rstrip().splitlines()[-1] == "graflow: error: task 'explode' failed: ValueError: bad row 7"
    rows = summary_rows(out)
    assert [rows[t][0] for t in ("prepare", "explode", "publish")] == ["succeeded", "failed", "skipped"]
    assert "Workflow 'failing' failed" in out


def test_a_failing_task_shows_its_traceback_through_user_code_only(write, cli: Run) -> None:
    _, _, err = cli("run", write("failing.py", FAILING))

    assert 'failing.py", line 12, in explode' in err
    assert 'raise ValueError("bad row 7")' in err
    assert "graflow/core/engine.py" not in err


GROUP_FAILING = """
from graflow import task, workflow

with workflow("fanout") as fanout:

    @task
    def broken():
        raise KeyError("missing column")

    @task
    def fine():
        return 1

    @task
    def merge():
        return 2

    (broken | fine).set_group_name("pair") >> merge
"""


def test_a_failing_parallel_group_exits_1_naming_the_group_and_member(write, cli: Run) -> None:
    path = write("group.py", GROUP_FAILING)

    code, out, err = cli("run", path)

    assert code == 1
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("graflow: error: parallel group 'pair' failed")
    assert "broken: KeyError" in last
    rows = summary_rows(out)
    assert [rows[t][0] for t in ("pair", "broken", "fine", "merge")] == [
        "failed",
        "failed",
        "succeeded",
        "skipped",
    ]


def test_a_graflow_error_is_one_line_printed_once_after_the_failing_members_traceback(
    write, cli: Run
) -> None:
    code, _, err = cli("run", write("group.py", GROUP_FAILING))

    assert code == 1
    assert err.count("parallel group 'pair' failed") == 1  # not in a traceback too
    assert 'group.py", line 8, in broken' in err  # the member's own exception, through its code
    assert "graflow/core" not in err
    assert err.rstrip().splitlines()[-1].startswith("graflow: error: parallel group 'pair' failed")


def test_verbose_prints_the_whole_traceback_of_a_graflow_error(write, cli: Run) -> None:
    code, _, err = cli("run", write("group.py", GROUP_FAILING), "-v")

    assert code == 1
    assert "graflow.exceptions.ParallelGroupError: parallel group 'pair' failed" in err
    assert "graflow/core/" in err


def test_max_steps_stops_a_run_that_loops_and_exits_1(write, cli: Run) -> None:
    path = write(
        "loop.py",
        """
        from graflow import task, workflow

        with workflow("spin") as spin:

            @task(inject_context=True, max_cycles=50)
            def again(ctx):
                ctx.next_iteration()
        """,
    )

    code, out, err = cli("run", path, "--max-steps", "3")

    assert code == 1
    assert "max_steps=3" in err.splitlines()[-1]
    assert summary_rows(out)["again"][:2] == ["succeeded", "3"]


def test_a_file_that_raises_while_loading_exits_1_with_its_traceback(write, cli: Run) -> None:
    path = write("broken.py", "from graflow import workflow\n\nraise RuntimeError('no config found')\n")

    code, out, err = cli("run", path)

    assert code == 1
    assert out == ""
    assert 'broken.py", line 3, in <module>' in err
    assert err.rstrip().endswith(
        "raised RuntimeError while loading: no config found; fix the file and run again"
    )


# --- run: skipped tasks ---------------------------------------------------------------


def test_tasks_after_terminate_workflow_show_as_skipped(write, cli: Run) -> None:
    code, out, err = cli("run", write("gate.py", EARLY_EXIT))

    assert code == 0, err
    rows = summary_rows(out)
    assert {t: rows[t][0] for t in ("gate", "process", "notify")} == {
        "gate": "succeeded",
        "process": "skipped",
        "notify": "skipped",
    }
    assert rows["process"][1:] == ["-", "-", "direct", "-"]
    assert "1 succeeded, 0 failed, 2 skipped" in out
    assert "Result: 'stopped'" in out


# --- run: choosing the workflow -----------------------------------------------------


def test_a_workflow_is_chosen_by_its_name_after_the_colon(write, cli: Run) -> None:
    path = write("two.py", TWO_WORKFLOWS)

    code, out, _ = cli("run", f"{path}:weekly")

    assert code == 0
    assert list(summary_rows(out)) == ["week_task"]


def test_a_workflow_is_chosen_by_its_variable_name_after_the_colon(write, cli: Run) -> None:
    path = write("two.py", TWO_WORKFLOWS)

    code, out, _ = cli("run", f"{path}:first")

    assert code == 0
    assert list(summary_rows(out)) == ["day_task"]


def test_an_unknown_workflow_name_exits_2_and_lists_the_known_ones(write, cli: Run) -> None:
    path = write("two.py", TWO_WORKFLOWS)

    code, out, err = cli("run", f"{path}:monthly")

    assert code == 2
    assert out == ""
    assert err == (
        f"graflow: error: no workflow 'monthly' in {path}; it defines: "
        "'daily' (variable first), 'weekly' (variable second)\n"
    )


def test_several_workflows_and_no_name_exits_2_asking_to_choose(write, cli: Run) -> None:
    path = write("two.py", TWO_WORKFLOWS)

    code, _, err = cli("run", path)

    assert code == 2
    assert "defines several workflows: 'daily' (variable first), 'weekly' (variable second)" in err
    assert f"choose one with {path}:NAME" in err


def test_a_file_without_a_workflow_exits_2_explaining_how_to_define_one(write, cli: Run) -> None:
    code, _, err = cli("run", write("empty.py", "VALUE = 1\n"))

    assert code == 2
    assert 'defines no workflow at module level; define one with `with workflow("name") as wf:`' in err


# --- run: usage errors -------------------------------------------------------------


def test_a_missing_file_exits_2_with_one_line_saying_what_to_pass(cli: Run, tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"

    code, _, err = cli("run", missing)

    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"graflow: error: no such file: {str(missing)!r}; pass the path of a Python file")


def test_an_unknown_option_exits_2(write, cli: Run) -> None:
    code, _, err = cli("run", write("pipeline.py", PIPELINE), "--bogus")

    assert code == 2
    assert "unrecognized arguments: --bogus" in err


def test_a_non_positive_max_steps_is_a_usage_error(write, cli: Run) -> None:
    code, _, err = cli("run", write("pipeline.py", PIPELINE), "--max-steps", "0")

    assert code == 2
    assert "--max-steps: expected a positive whole number, got '0'" in err


def test_set_without_an_equals_sign_exits_2(write, cli: Run) -> None:
    code, out, err = cli("run", write("pipeline.py", PIPELINE), "--set", "limit")

    assert code == 2
    assert out == ""
    assert err == (
        "graflow: error: --set expects KEY=VALUE, got 'limit'; for example --set limit=10 "
        "--set name=ada (values are read as JSON when they parse, else as text)\n"
    )


def test_redis_url_without_the_redis_queue_is_a_usage_error(write, cli: Run) -> None:
    code, _, err = cli("run", write("pipeline.py", PIPELINE), "--redis-url", "redis://localhost:6379/0")

    assert code == 2
    assert err == "graflow: error: --redis-url needs --queue redis (the memory queue has no server)\n"


@pytest.mark.skipif(
    "redis" in get_plugin_manager().names("graflow_queue_backends"),
    reason="graflow-redis is installed here",
)
def test_the_redis_queue_without_graflow_redis_exits_2_naming_the_package(write, cli: Run) -> None:
    code, out, err = cli("run", write("pipeline.py", PIPELINE), "--queue", "redis")

    assert code == 2
    assert out == ""
    assert err.startswith("graflow: error: the queue backend 'redis' needs the 'graflow-redis' distribution")
    assert err.rstrip().endswith("pip install graflow-redis")


def test_an_unknown_queue_backend_exits_2_listing_the_known_ones(write, cli: Run) -> None:
    code, _, err = cli("run", write("pipeline.py", PIPELINE), "--queue", "carrier-pigeon")

    assert code == 2
    assert "unknown queue backend 'carrier-pigeon'; known: memory" in err


# --- run: --set --------------------------------------------------------------------


def test_set_values_reach_the_channel_parsed_as_json_when_possible(write, cli: Run) -> None:
    path = write("echo.py", CHANNEL_ECHO)

    code, out, err = cli(
        "run", path, "--set", "limit=10", "--set", "name=ada", "--set", "flags=[1, 2]",
        "--set", 'quoted="7"', "--set", "note=a=b",
    )  # fmt: skip

    assert code == 0, err
    assert "Result: {'limit': 10, 'name': 'ada', 'flags': [1, 2], 'quoted': '7', 'note': 'a=b'}" in out


# --- graph ---------------------------------------------------------------------------


def test_graph_prints_mermaid_by_default_with_the_group_as_a_subgraph(write, cli: Run) -> None:
    code, out, _ = cli("graph", write("pipeline.py", PIPELINE))

    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == "flowchart TD"
    start = lines.index('subgraph stats["stats (parallel)"]')
    assert lines[start + 1 : start + 4] == ['total["total"]', 'biggest["biggest"]', "end"]
    assert "fetch --> stats" in lines
    assert "stats --> report" in lines


def test_graph_prints_graphviz_dot_with_the_group_as_a_cluster(write, cli: Run) -> None:
    code, out, _ = cli("graph", write("pipeline.py", PIPELINE), "--format", "dot")

    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == "digraph workflow {"
    assert lines[-1] == "}"
    assert 'subgraph "cluster_stats" {' in lines
    assert '"fetch" -> "stats";' in lines
    assert '"stats" -> "report";' in lines


def test_graph_prints_ascii_in_dependency_order(write, cli: Run) -> None:
    code, out, _ = cli("graph", write("pipeline.py", PIPELINE), "--format", "ascii")

    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["fetch", "-->", "stats"],
        ["[stats:", "total", "|", "biggest]", "-->", "report"],
        ["report"],
    ]


def test_graph_does_not_run_any_task(write, cli: Run, tmp_path: Path) -> None:
    path = write(
        "marker.py",
        f"""
        from pathlib import Path

        from graflow import task, workflow

        with workflow("marker") as marker:

            @task
            def touch():
                Path({str(tmp_path / "touched")!r}).write_text("ran")
        """,
    )

    code, out, _ = cli("graph", path)

    assert code == 0
    assert 'touch["touch"]' in out
    assert not (tmp_path / "touched").exists()


def test_graph_with_an_unknown_format_exits_2(write, cli: Run) -> None:
    code, _, err = cli("graph", write("pipeline.py", PIPELINE), "--format", "svg")

    assert code == 2
    assert "invalid choice: 'svg'" in err


# --- plugins -------------------------------------------------------------------------


def test_plugins_lists_the_builtin_handler_backends_and_coordinators(cli: Run) -> None:
    code, out, _ = cli("plugins")

    assert code == 0
    builtin = out[out.index("| builtin") :]
    builtin = builtin[: builtin.index("\n|--")]
    assert "graflow-core (built in)" in builtin
    assert "handler: direct" in builtin
    assert "queue backend: memory" in builtin
    assert "channel backend: memory" in builtin
    assert "coordination backend: direct, threading, multiprocessing" in builtin


class _GpuPlugin:
    @hookimpl
    def graflow_task_handlers(self) -> dict[str, object]:
        from graflow.core.handlers.direct import DirectTaskHandler

        return {"gpu": DirectTaskHandler}


@pytest.fixture
def registered() -> Iterator[Callable[[object, str], None]]:
    names: list[str] = []

    def register(plugin: object, name: str) -> None:
        get_plugin_manager().register(plugin, name=name)
        names.append(name)

    yield register
    for name in names:
        get_plugin_manager().unregister(name)


def test_plugins_lists_what_a_registered_plugin_contributes(cli: Run, registered) -> None:
    registered(_GpuPlugin(), "gpu-plugin")

    code, out, _ = cli("plugins")

    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("| gpu-plugin"))
    assert "handler: gpu" in row


def test_plugins_shows_a_plugin_that_failed_to_load_with_its_error_and_package(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = dict(get_plugin_manager().failures)
    failures["broken"] = ("graflow-broken", "ImportError: No module named 'numpy'")
    monkeypatch.setattr(get_plugin_manager(), "failures", failures)

    code, out, _ = cli("plugins")

    assert code == 0
    section = out[out.index("| broken") :]
    assert "graflow-broken" in section
    assert "failed to load: ImportError: No module named 'numpy'" in section
    assert "pip install --force-reinstall graflow-broken" in section


# --- the parser itself -----------------------------------------------------------------


class _HelloCommand:
    @hookimpl
    def graflow_cli_commands(self, subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        hello = subparsers.add_parser("hello", help="say hello")
        hello.add_argument("--name", default="world")
        hello.set_defaults(func=lambda args: sys.stdout.write(f"hello {args.name}\n") and 0)


def test_plugins_add_subcommands_through_the_cli_hook(cli: Run, registered) -> None:
    registered(_HelloCommand(), "hello-plugin")

    code, out, _ = cli("hello", "--name", "graflow")

    assert (code, out) == (0, "hello graflow\n")


class _BrokenCommands:
    @hookimpl(tryfirst=True)
    def graflow_cli_commands(self, subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        raise RuntimeError("bad plugin")


def test_a_plugin_failing_to_add_commands_leaves_the_core_commands_working(
    write, cli: Run, registered
) -> None:
    registered(_BrokenCommands(), "broken-commands")

    code, out, err = cli("run", write("pipeline.py", PIPELINE))

    assert code == 0
    assert "graflow: warning: a plugin failed to add its commands (RuntimeError: bad plugin)" in err
    assert "Result: {'total': 6, 'biggest': 3}" in out


def test_no_command_exits_2_saying_how_to_list_them(cli: Run) -> None:
    code, out, err = cli()

    assert code == 2
    assert out == ""
    assert "choose a command (run, graph, plugins, ...); `graflow --help` lists them" in err


def test_help_lists_the_core_commands_with_examples(cli: Run) -> None:
    code, out, _ = cli("--help")

    assert code == 0
    for command in ("run", "graph", "plugins"):
        assert f"\n    {command} " in out
    assert "examples:" in out
    assert "graflow run flows/etl.py" in out


def test_version_prints_the_graflow_version(cli: Run) -> None:
    from graflow import __version__

    code, out, _ = cli("--version")

    assert (code, out) == (0, f"graflow {__version__}\n")
