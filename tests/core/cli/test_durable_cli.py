"""``graflow run --durable``, ``resume`` and ``rerun`` (SPEC sections 14 and 16), with real processes.

The driver of a durable run is a real ``python -m graflow run`` process, killed with
SIGKILL while a task is in flight; another process resumes the run without the
workflow's file. Every task appends its name to a side-effects file, so a test can
tell what ran, and how often.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from graflow.plugins import get_plugin_manager, hookimpl
from graflow.state.local import SCHEMA_VERSION, LocalStore
from tests.core.cli.output import Run, summary_rows, table_rows
from tests.support.waiting import wait_until

#: Four tasks in a chain; ``publish`` says it is in flight, then waits for ``release``.
NIGHTLY = """
import os
import time
from pathlib import Path

from graflow import task, workflow

HERE = Path(__file__).resolve().parent
SIDE_EFFECTS = HERE / "side-effects.txt"
IN_FLIGHT = HERE / "in-flight"
RELEASE = HERE / "release"


def did(name):
    with SIDE_EFFECTS.open("a") as file:
        file.write(name + "\\n")


with workflow("nightly") as nightly:

    @task(inject_context=True)
    def extract(ctx):
        did("extract")
        ctx.get_channel().set("rows", [3, 1, 2])
        return 3

    @task(inject_context=True)
    def transform(ctx):
        did("transform")
        ctx.get_channel().append("log", "sorted")
        return sorted(ctx.get_channel().get("rows"))

    @task
    def publish():
        did("publish")
        IN_FLIGHT.write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while not RELEASE.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("nobody released publish")
            time.sleep(0.02)
        return "published"

    @task(inject_context=True)
    def report(ctx):
        did("report")
        channel = ctx.get_channel()
        return {"rows": channel.get("rows"), "log": channel.get("log"), "sorted": ctx.get_result("transform")}

    extract >> transform >> publish >> report
"""

#: ``check`` fails until the file ``fixed`` exists next to the workflow.
FLAKY = """
from pathlib import Path

from graflow import task, workflow

HERE = Path(__file__).resolve().parent


def did(name):
    with (HERE / "side-effects.txt").open("a") as file:
        file.write(name + "\\n")


with workflow("flaky") as flaky:

    @task
    def fetch():
        did("fetch")
        return [1, 2, 3]

    @task(inject_context=True)
    def check(ctx):
        did("check")
        if not (HERE / "fixed").exists():
            raise ValueError("row 2 is malformed")
        return sum(ctx.get_result("fetch"))

    @task(inject_context=True)
    def store(ctx):
        did("store")
        return f"stored {ctx.get_result('check')}"

    fetch >> check >> store
"""


def graflow(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m graflow ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "graflow", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def side_effects(folder: Path) -> list[str]:
    path = folder / "side-effects.txt"
    return path.read_text().split() if path.exists() else []


def runs_json(state: Path) -> list[dict[str, Any]]:
    listed = graflow("runs", "--json", "--state-dir", state)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def driver(write, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """A durable ``graflow run`` process blocked in ``publish``: ``(process, run id, state dir)``."""
    path = write("nightly.py", NIGHTLY)
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "graflow", "run", str(path), "--durable", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline().split()
        assert first[:1] == ["run"], process.stderr.read() if process.poll() is not None else first
        wait_until(lambda: (tmp_path / "in-flight").exists(), 60, "the driver to start publish")
        yield process, first[1], state
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


# --- a killed driver, resumed elsewhere --------------------------------------------------------------


def test_a_killed_driver_is_resumed_by_another_process_without_the_workflow_file(
    driver, tmp_path: Path
) -> None:
    process, run_id, state = driver
    [running] = runs_json(state)
    assert (running["run_id"], running["status"], running["tasks_done"], running["tasks_total"]) == (
        run_id,
        "running",
        2,
        4,
    )

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "nightly.py").rename(moved / "nightly.py")
    (tmp_path / "release").touch()
    resumed = graflow("resume", run_id, "--state-dir", state, cwd=moved)

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == f"run {run_id}"
    # Every task ran once, except publish, in flight at the kill, which ran again.
    assert side_effects(tmp_path) == ["extract", "transform", "publish", "publish", "report"]
    # Channel values written before the kill are seen after it.
    assert "Result: {'rows': [3, 1, 2], 'log': ['sorted'], 'sorted': [1, 2, 3]}" in resumed.stdout
    rows = summary_rows(resumed.stdout)
    assert {task: row[0] for task, row in rows.items()} == {
        "extract": "reused",
        "transform": "reused",
        "publish": "succeeded",
        "report": "succeeded",
    }
    assert "2 succeeded, 2 reused, 0 failed, 0 skipped" in resumed.stdout
    [done] = runs_json(state)
    assert (done["status"], done["tasks_done"], done["tasks_total"]) == ("succeeded", 4, 4)
    shown = graflow("runs", "show", run_id, "--state-dir", state)
    assert shown.returncode == 0, shown.stderr
    history = table_rows(shown.stdout, 6)
    assert list(history) == ["extract", "transform", "publish", "report"]
    assert {task: row[0] for task, row in history.items()} == dict.fromkeys(history, "done")


def test_a_run_held_by_a_live_driver_is_refused_naming_it(driver) -> None:
    process, run_id, state = driver

    refused = graflow("resume", run_id, "--state-dir", state)

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(
        f"graflow: error: run '{run_id}' is being executed by {socket.gethostname()}:{process.pid} "
    )
    assert process.poll() is None  # the driver is left alone


def test_run_prints_the_run_id_as_its_first_line_before_any_task_starts(write, tmp_path: Path) -> None:
    path = write(
        "hello.py",
        """
        from graflow import task, workflow

        with workflow("hello") as hello:

            @task
            def greet():
                print("hello from the task", flush=True)
                return "hi"
        """,
    )

    done = graflow("run", path, "--durable", "--state-dir", tmp_path / "state")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run ") and len(lines[0].split()[1]) == 32
    assert lines.index("hello from the task") > 0
    assert runs_json(tmp_path / "state")[0]["run_id"] == lines[0].split()[1]


# --- resume and rerun in process -------------------------------------------------------------------


def _run_id(stdout: str) -> str:
    first = stdout.splitlines()[0].split()
    assert first[0] == "run", stdout
    return first[1]


def test_resuming_an_unknown_run_exits_2_with_one_line_saying_where_it_looked(
    cli: Run, tmp_path: Path
) -> None:
    code, out, err = cli("resume", "0123abcd", "--state-dir", tmp_path / "state")

    assert code == 2
    assert out == ""
    assert err == (
        f"graflow: error: no run '0123abcd' in the state directory {tmp_path / 'state'}; `graflow runs` "
        "lists the runs there. Check the id, and that you point at the store the run used (--state-dir, "
        "or --redis-url and --key-prefix)\n"
    )


def test_resuming_a_finished_run_prints_its_result_and_runs_nothing(write, cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fixed").touch()
    code, out, _ = cli("run", write("flaky.py", FLAKY), "--durable")
    run_id = _run_id(out)
    assert code == 0

    code, out, err = cli("resume", run_id)

    assert code == 0, err
    assert out.splitlines()[0] == f"run {run_id}"
    assert "already succeeded" in out and "nothing runs again" in out
    assert "Result: 'stored 6'" in out
    assert side_effects(tmp_path) == ["fetch", "check", "store"]
    assert {row[0] for row in summary_rows(out).values()} == {"reused"}


def test_a_failed_durable_run_says_how_to_resume_it_and_resume_runs_only_what_failed(
    write, cli: Run, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    code, out, err = cli("run", write("flaky.py", FLAKY), "--state-dir", state)
    run_id = _run_id(out)

    assert code == 1
    assert f"once the cause is fixed, `graflow resume {run_id} --state-dir {state}` carries it on" in err
    (tmp_path / "fixed").touch()
    code, out, err = cli("resume", run_id, "--state-dir", state)

    assert code == 0, err
    assert side_effects(tmp_path) == ["fetch", "check", "check", "store"]
    assert "Result: 'stored 6'" in out
    assert {task: row[:2] for task, row in summary_rows(out).items()} == {
        "fetch": ["reused", "-"],
        "check": ["succeeded", "1"],
        "store": ["succeeded", "1"],
    }


def test_a_task_resumed_mid_iteration_counts_this_executions_runs_apart_from_reused_ones(
    write, cli: Run, tmp_path: Path
) -> None:
    path = write(
        "loop.py",
        """
        from pathlib import Path

        from graflow import task, workflow

        HERE = Path(__file__).resolve().parent

        with workflow("loop") as loop:

            @task(inject_context=True)
            def poll(ctx, data=None):
                if ctx.cycle_count == 3 and not (HERE / "fixed").exists():
                    raise ConnectionError("the service went away")
                if ctx.cycle_count < 4:
                    ctx.next_iteration()
                return ctx.cycle_count
        """,
    )
    code, out, _ = cli("run", path, "--durable")
    run_id = _run_id(out)
    assert code == 1
    (tmp_path / "fixed").touch()

    code, out, err = cli("resume", run_id)

    assert code == 0, err
    assert summary_rows(out)["poll"][:2] == ["succeeded", "2 (+2 reused)"]
    assert "iteration 3" in out  # the progress line of the first step run again
    assert "Result: 4" in out


def test_rerun_from_a_middle_task_is_a_new_run_of_that_task_and_everything_downstream(
    write, cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "fixed").touch()
    code, out, _ = cli("run", write("flaky.py", FLAKY), "--durable")
    first = _run_id(out)

    code, out, err = cli("rerun", first, "--from", "check")

    assert code == 0, err
    second = _run_id(out)
    assert second != first
    assert f"replaying run {first}" in out.splitlines()[1]
    assert side_effects(tmp_path) == ["fetch", "check", "store", "check", "store"]
    assert summary_rows(out)["fetch"][0] == "reused"
    code, out, _ = cli("runs", "show", second)
    assert f"a rerun of run {first} from task 'check'" in out
    code, out, _ = cli("runs", "--json")
    assert [(r["run_id"], r["status"]) for r in json.loads(out)] == [
        (second, "succeeded"),
        (first, "succeeded"),
    ]


def test_rerun_from_an_unknown_task_exits_2_listing_the_tasks(write, cli: Run) -> None:
    code, out, _ = cli("run", write("flaky.py", FLAKY), "--durable")
    run_id = _run_id(out)

    code, out, err = cli("rerun", run_id, "--from", "nope")

    assert code == 2
    assert out == ""
    assert err == f"graflow: error: run '{run_id}' has no task 'nope'; its tasks: check, fetch, store\n"
    code, out, _ = cli("runs", "--json")
    assert len(json.loads(out)) == 1  # no new run was started


# --- the state store failing ------------------------------------------------------------------------


class _FillingStore(LocalStore):
    """A local store whose disk is full from the second step on (SQLite's own ``SQLITE_FULL``)."""

    def record_step(self, run_id: str, seq: int, step: Any, *, done: int, total: int) -> None:
        if seq > 1:
            with self.reading() as db:
                db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        super().record_step(run_id, seq, step, done=done, total=total)


class _FullDisk:
    @hookimpl
    def graflow_state_stores(self) -> dict[str, Any]:
        return {"local": _FillingStore.from_config}


@contextmanager
def _disk_full() -> Iterator[None]:
    manager = get_plugin_manager()
    manager.register(_FullDisk(), name="test-full-disk")
    try:
        yield
    finally:
        manager.unregister("test-full-disk")


def test_a_state_directory_that_fills_up_mid_run_fails_the_run_naming_it_and_how_to_resume(
    write, cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "fixed").touch()
    state = tmp_path / "state"
    path = write("flaky.py", FLAKY.replace("return sum(", "return 'x' * 100_000 or sum("))
    with _disk_full():
        code, out, err = cli("run", path, "--state-dir", state)
    run_id = _run_id(out)

    assert code == 1
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"graflow: error: run '{run_id}' stopped: its state could not be written to ")
    assert "database or disk is full" in err
    assert err.rstrip().endswith(f"`graflow resume {run_id} --state-dir {state}`")
    code, out, err = cli("resume", run_id, "--state-dir", state)
    assert code == 0, err
    # check ran before its step could be recorded, so it ran again; fetch was recorded.
    assert side_effects(tmp_path) == ["fetch", "check", "check", "store"]


def _corrupt(state: Path) -> None:
    state.mkdir()
    (state / "runs.db").write_bytes(b"\x00garbage, not a database" * 200)


def _sql(path: Path, statement: str) -> None:
    """Change the file as another program would, and close it (so it is at rest, WAL folded in)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(statement)
    finally:
        db.close()


def _foreign(state: Path) -> None:
    state.mkdir()
    _sql(state / "runs.db", "CREATE TABLE invoices (amount REAL)")


def _future(state: Path) -> None:
    LocalStore(state).close()
    _sql(state / "runs.db", "UPDATE meta SET value = '99' WHERE key = 'schema'")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_corrupt, "is damaged or is not an SQLite database"),
        (_foreign, "is an SQLite file, but not a Graflow state store (tables: invoices)"),
        (_future, f"was written by a Graflow with state schema 99, this one reads schema {SCHEMA_VERSION}"),
    ],
    ids=["corrupt", "foreign", "future-schema"],
)
@pytest.mark.parametrize(
    "command",
    [["runs"], ["runs", "show", "abc"], ["resume", "abc"], ["rerun", "abc", "--from", "fetch"], ["run"]],
    ids=["runs", "show", "resume", "rerun", "run"],
)
def test_a_state_file_that_is_not_ours_fails_every_command_with_one_line_and_is_left_unchanged(
    write, cli: Run, tmp_path: Path, spoil: Any, message: str, command: list[str]
) -> None:
    state = tmp_path / "state"
    spoil(state)
    before = (state / "runs.db").read_bytes()
    argv = [*command, write("flaky.py", FLAKY), "--durable"] if command == ["run"] else command

    code, out, err = cli(*argv, "--state-dir", state)

    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("graflow: error: ") and message in err
    assert "(nothing was changed)" in err
    assert (state / "runs.db").read_bytes() == before
    assert side_effects(tmp_path) == []


def test_an_unusable_state_directory_fails_before_any_task_with_one_line(
    write, cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")

    code, out, err = cli("run", write("flaky.py", FLAKY), "--state-dir", tmp_path / "a-file" / "state")

    assert code == 1
    assert out == ""
    assert err.startswith(
        f"graflow: error: the state directory {tmp_path / 'a-file' / 'state'} cannot be used"
    )
    assert err.count("\n") == 1
    assert side_effects(tmp_path) == []


def test_a_checkpoint_that_cannot_be_written_fails_the_run_with_one_line(
    write, cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    path = write(
        "saving.py",
        f"""
        from graflow import task, workflow

        with workflow("saving") as saving:

            @task(inject_context=True)
            def train(ctx):
                ctx.checkpoint(path={str(tmp_path / "a-file" / "ckpt")!r})
                return 1
        """,
    )

    code, _, err = cli("run", path)

    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("graflow: error: the checkpoint of run '")
    assert "a-file/ckpt.pkl" in err and "choose a writable path" in err


# --- options ------------------------------------------------------------------------------------------


def test_state_dir_implies_durable(write, cli: Run, tmp_path: Path) -> None:
    code, out, _ = cli("run", write("flaky.py", FLAKY), "--state-dir", tmp_path / "here")

    assert f"kept in the state directory {tmp_path / 'here'}" in out.splitlines()[1]
    assert (tmp_path / "here" / "runs.db").exists()


def test_without_state_dir_runs_are_kept_in_graflow_state_dir(write, cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fixed").touch()
    code, out, _ = cli("run", write("flaky.py", FLAKY), "--durable")

    assert code == 0
    assert (tmp_path / "default-state" / "runs.db").exists()  # GRAFLOW_STATE_DIR, set by the conftest
    code, listed, _ = cli("runs", "--json")
    assert json.loads(listed)[0]["run_id"] == _run_id(out)


def test_a_run_that_is_not_durable_still_prints_its_id_and_keeps_nothing(
    write, cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "fixed").touch()
    code, out, _ = cli("run", write("flaky.py", FLAKY))

    assert code == 0
    assert len(_run_id(out)) == 32
    assert not (tmp_path / "default-state").exists()


@pytest.fixture
def without_graflow_redis() -> Iterator[None]:
    """The plugin manager as it is where graflow-redis is not installed."""
    manager = get_plugin_manager()
    plugin = manager.get_plugin("redis")
    if plugin is not None:
        manager.unregister("redis")
    try:
        yield
    finally:
        if plugin is not None:
            manager.register(plugin, name="redis")


@pytest.mark.parametrize("command", [["runs"], ["resume", "abc"], ["rerun", "abc", "--from", "x"]])
def test_redis_url_without_graflow_redis_names_the_package_to_install(
    cli: Run, tmp_path: Path, command: list[str], without_graflow_redis: None
) -> None:
    code, out, err = cli(*command, "--redis-url", "redis://127.0.0.1:1/0", "--key-prefix", "etl")

    assert code == 2
    assert out == ""
    assert "pip install graflow-redis" in err
    assert not (tmp_path / "default-state").exists()  # no silent fallback to the local store


def test_key_prefix_without_redis_url_is_a_usage_error(cli: Run) -> None:
    code, _, err = cli("runs", "--key-prefix", "etl")

    assert code == 2
    assert err == "graflow: error: --key-prefix names runs kept in Redis; use it with --redis-url URL\n"


def test_state_dir_and_redis_url_name_two_stores(cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("runs", "--state-dir", tmp_path, "--redis-url", "redis://127.0.0.1:1/0")

    assert code == 2
    assert err == "graflow: error: --state-dir and --redis-url name two stores; choose one\n"


def test_key_prefix_on_the_memory_queue_is_a_usage_error(write, cli: Run) -> None:
    code, _, err = cli("run", write("flaky.py", FLAKY), "--key-prefix", "etl")

    assert code == 2
    assert err == "graflow: error: --key-prefix needs --queue redis (the memory queue has no Redis keys)\n"


# --- help and exit statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["run"], "graflow run flows/etl.py --durable"),
        (["resume"], "graflow resume 3f2a9c0e... --state-dir /srv/flows/state"),
        (["rerun"], "graflow rerun 3f2a9c0e... --from transform"),
        (["runs"], "graflow runs --status failed --workflow etl"),
        (["runs", "show"], "graflow runs show 3f2a9c0e..."),
    ],
)
def test_every_durable_command_has_help_with_examples(cli: Run, command: list[str], example: str) -> None:
    code, out, _ = cli(*command, "--help")

    assert code == 0
    assert example in out


@pytest.mark.parametrize("command", ["run", "resume", "rerun"])
def test_commands_that_execute_a_run_document_every_exit_status(cli: Run, command: str) -> None:
    _, out, _ = cli(command, "--help")

    text = " ".join(out.split())
    for status in ("0 the run succeeded", "1 it failed", "2 bad usage", "3 the run suspended"):
        assert status in text


def test_state_store_options_are_the_same_on_every_command(cli: Run) -> None:
    for command in (["resume"], ["rerun"], ["runs"], ["runs", "show"]):
        _, out, _ = cli(*command, "--help")
        for option in ("--state-dir DIR", "--redis-url URL", "--key-prefix P"):
            assert option in out, (command, option)


def test_the_driver_environment_variables_are_named_in_run_help(cli: Run) -> None:
    _, out, _ = cli("run", "--help")

    assert "env REDIS_URL" in out and "env GRAFLOW_KEY_PREFIX" in out and "GRAFLOW_STATE_DIR" in out
    assert os.environ["GRAFLOW_STATE_DIR"].endswith("default-state")
