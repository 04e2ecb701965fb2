"""The local state store (SPEC section 16): one SQLite file per state directory, kept across processes.

These talk to :class:`LocalStore` directly; ``tests/core/cli/test_durable_cli.py`` drives it
through real ``graflow`` processes.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from graflow.core.graph import TaskGraph
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError, RunInUseError, RunNotFoundError, StateStoreError
from graflow.state.local import SCHEMA_VERSION, LocalStore, state_dir
from graflow.state.records import Completion, RunStatus, step_key
from graflow.state.store import RunJournal, RunPlan


def _double(x: int = 2) -> int:
    return x * 2


def _plan(run_id: str, workflow_name: str = "flow", *task_ids: str) -> RunPlan:
    graph = TaskGraph()
    for task_id in task_ids or ("a", "b"):
        graph.add_node(TaskWrapper(task_id, _double))
    return RunPlan(run_id, workflow_name, graph, start_nodes=list(graph.nodes), max_steps=100, config={})


def _step(task_id: str, occurrence: int = 1, **fields: object) -> Completion:
    return Completion(step_key("", task_id, occurrence), task_id, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    opened = LocalStore(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def journals() -> Iterator[list[RunJournal]]:
    """Journals a test opened: their lease threads are stopped afterwards."""
    opened: list[RunJournal] = []
    yield opened
    for journal in opened:
        journal.close()


def _sql(store: LocalStore, statement: str, *params: object) -> list[tuple[object, ...]]:
    """Look at (or age) the file from another connection, as another process would."""
    with sqlite3.connect(store.path) as db:
        return db.execute(statement, params).fetchall()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- recording and loading ----------------------------------------------------------------


def test_a_run_records_its_plan_and_steps_and_another_store_loads_them_back(store, journals) -> None:
    journal = store.start_run(_plan("r1"))
    journals.append(journal)
    journal.record(_step("a", channel_ops=[("set", ("seen", "a", None))]), {"a": 1})
    journal.record(_step("b"), 4)

    saved = LocalStore(store.directory).load("r1")

    assert [c.key for c in saved.completions] == ["|a|1", "|b|1"]
    assert saved.results == {"a": {"a": 1}, "b": 4}
    assert saved.channel == {"seen": "a"}
    assert list(saved.plan.graph.nodes) == ["a", "b"]
    assert saved.plan.graph.get_node("a").run(x=21) == 42  # the function travelled by value
    assert (saved.info.status, saved.info.tasks_done, saved.info.tasks_total) == (RunStatus.RUNNING, 2, 2)


def test_a_task_that_runs_again_keeps_every_step_but_only_its_latest_result(store, journals) -> None:
    journal = store.start_run(_plan("r1"))
    journals.append(journal)
    journal.record(_step("a", 1), "first")
    journal.record(_step("a", 2), "second")

    saved = store.load("r1")

    assert [c.key for c in saved.completions] == ["|a|1", "|a|2"]
    assert saved.results == {"a": "second"}
    assert saved.info.tasks_done == 1


def test_the_channel_is_rebuilt_from_the_initial_values_and_every_recorded_write(store, journals) -> None:
    plan = _plan("r1")
    plan.initial_channel = {"count": 10, "log": []}
    journal = store.start_run(plan)
    journals.append(journal)
    journal.record(_step("a", channel_ops=[("atomic_add", ("count", 5)), ("append", ("log", "a"))]), None)
    journal.record(_step("b", channel_ops=[("delete", ("count",)), ("append", ("log", "b"))]), None)

    assert store.load("r1").channel == {"log": ["a", "b"]}


def test_a_group_step_does_not_count_as_a_task_done(tmp_path: Path) -> None:
    with workflow("grouped") as wf:
        first, left, right, last = (TaskWrapper(t, _double) for t in ("first", "left", "right", "last"))
        first >> (left | right) >> last
        wf.execute(durable=True, config={"state_dir": str(tmp_path)})

    info = LocalStore(tmp_path).runs()[0]

    assert (info.status, info.tasks_done, info.tasks_total) == (RunStatus.SUCCEEDED, 4, 4)


def test_a_step_writes_a_few_pages_whatever_the_size_of_the_plan(store, journals) -> None:
    big = _plan("r1", "big", *(f"t{i}" for i in range(3000)))
    journal = store.start_run(big)
    journals.append(journal)
    with store.reading() as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        plan_pages = db.execute("SELECT length(plan) FROM plans").fetchone()[0] // 4096

    for n in range(5):
        journal.record(_step(f"t{n}"), {"n": n})

    with store.reading() as db:
        _busy, frames, _done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert plan_pages > 50
    assert frames < 5 * 8  # a completion, a result, the run's counts: never the plan again


def test_an_unknown_run_id_is_a_run_not_found_error_naming_the_directory(store) -> None:
    with pytest.raises(RunNotFoundError, match=r"no run 'nope' in the state directory .*state"):
        store.load("nope")
    with pytest.raises(RunNotFoundError):
        store.run("nope")
    with pytest.raises(RunNotFoundError):
        store.resume_run("nope")


# --- listing ---------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_filtered_by_status_workflow_and_limit(store, journals) -> None:
    for run_id, name in (("old", "etl"), ("mid", "report"), ("new", "etl")):
        journals.append(store.start_run(_plan(run_id, name)))
        time.sleep(0.01)  # distinct start times
    journals[1].finish(RunStatus.FAILED, "task 'a': ValueError: bad row")

    assert [r.run_id for r in store.runs()] == ["new", "mid", "old"]
    assert [r.run_id for r in store.runs(workflow="etl")] == ["new", "old"]
    assert [r.run_id for r in store.runs(status=RunStatus.FAILED)] == ["mid"]
    assert [r.run_id for r in store.runs(limit=2)] == ["new", "mid"]
    assert store.run("mid").error == "task 'a': ValueError: bad row"


def test_run_info_json_has_the_fields_scripts_rely_on(store, journals) -> None:
    journal = store.start_run(_plan("r1"))
    journal.record(_step("a"), 1)
    journal.finish(RunStatus.SUCCEEDED)

    shown = store.run("r1").to_json()

    assert list(shown) == [
        "run_id",
        "workflow",
        "status",
        "started_at",
        "finished_at",
        "tasks_done",
        "tasks_total",
        "error",
    ]
    assert shown["status"] == "succeeded"
    assert time.strptime(shown["finished_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert (shown["tasks_done"], shown["tasks_total"], shown["error"]) == (1, 2, None)


# --- leases ------------------------------------------------------------------------------------


def _hold(store: LocalStore, run_id: str, holder: str, seconds: float = 60.0) -> None:
    _sql(
        store,
        "UPDATE runs SET holder = ?, lease_until = ? WHERE run_id = ?",
        holder,
        time.time() + seconds,
        run_id,
    )


def test_a_run_held_by_a_live_process_is_refused_naming_the_holder(store, journals) -> None:
    journals.append(store.start_run(_plan("r1")))
    holder = f"{socket.gethostname()}:{os.getppid()}"  # alive: it started this test process
    _hold(store, "r1", holder)

    with pytest.raises(RunInUseError, match=rf"run 'r1' is being executed by {holder} "):
        store.resume_run("r1")


def test_a_run_held_by_a_dead_process_of_this_host_is_taken_over_at_once(store, journals) -> None:
    journals.append(store.start_run(_plan("r1")))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _hold(store, "r1", f"{socket.gethostname()}:{gone.stdout.strip()}")

    saved, journal = store.resume_run("r1")
    journals.append(journal)

    assert saved.info.run_id == "r1"
    assert store.run("r1").holder == f"{socket.gethostname()}:{os.getpid()}"


def test_a_lease_of_another_host_is_respected_until_it_expires(store, journals) -> None:
    journals.append(store.start_run(_plan("r1")))
    _hold(store, "r1", "elsewhere:1234")
    with pytest.raises(RunInUseError, match="elsewhere:1234"):
        store.resume_run("r1")

    _hold(store, "r1", "elsewhere:1234", seconds=-1)
    _saved, journal = store.resume_run("r1")
    journals.append(journal)


def test_finishing_a_run_gives_up_its_lease(store) -> None:
    journal = store.start_run(_plan("r1"))
    assert store.run("r1").holder is not None

    journal.finish(RunStatus.FAILED, "boom")

    assert store.run("r1").holder is None
    _saved, again = store.resume_run("r1")  # a failed run is resumed by whoever asks
    again.close()
    assert store.run("r1").status is RunStatus.RUNNING


# --- retention -----------------------------------------------------------------------------------


def test_runs_finished_longer_ago_than_run_ttl_are_deleted_when_a_store_opens(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, run_ttl=3600)
    for run_id in ("expired", "recent", "abandoned", "live"):
        journal = store.start_run(_plan(run_id))
        journal.record(_step("a"), "result")
        if run_id in ("expired", "recent"):
            journal.finish(RunStatus.SUCCEEDED)
        journal.close()
    long_ago = time.time() - 7200
    _sql(store, "UPDATE runs SET finished_at = ? WHERE run_id = 'expired'", long_ago)
    _sql(store, "UPDATE runs SET lease_until = ? WHERE run_id = 'abandoned'", long_ago)

    reopened = LocalStore(tmp_path, run_ttl=3600)

    assert sorted(r.run_id for r in reopened.runs()) == ["live", "recent"]
    assert _sql(store, "SELECT DISTINCT run_id FROM completions ORDER BY run_id") == [("live",), ("recent",)]
    assert _sql(store, "SELECT DISTINCT run_id FROM results ORDER BY run_id") == [("live",), ("recent",)]


@pytest.mark.parametrize("bad", [0, -1, "7d", float("inf"), True])
def test_run_ttl_must_be_a_positive_number_of_seconds(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"run_ttl must be a (finite )?number of seconds"):
        LocalStore(tmp_path, run_ttl=bad)  # type: ignore[arg-type]


def test_state_sync_is_normal_or_full(tmp_path: Path) -> None:
    assert LocalStore.from_config({"state_dir": str(tmp_path), "state_sync": "full"}).path.exists()
    with pytest.raises(ConfigError, match="state_sync must be 'normal' or 'full'"):
        LocalStore(tmp_path, sync="sometimes")


def test_the_state_directory_comes_from_config_then_the_environment_then_dot_graflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAFLOW_STATE_DIR", "/from/env")
    assert state_dir({"state_dir": "/from/config"}) == Path("/from/config")
    assert state_dir({}) == Path("/from/env")
    monkeypatch.delenv("GRAFLOW_STATE_DIR")
    assert state_dir({}) == Path(".graflow")


# --- files that are not ours -----------------------------------------------------------------------


def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    before = _digest(path)

    with pytest.raises(
        StateStoreError, match=r"an SQLite file, but not a Graflow state store \(tables: people\)"
    ):
        LocalStore(tmp_path)

    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]


def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    before = _digest(path)

    with pytest.raises(StateStoreError, match=r"runs.db is damaged or is not an SQLite database") as caught:
        LocalStore(tmp_path)

    assert "nothing was changed" in str(caught.value)
    assert _digest(path) == before


def test_a_store_written_by_a_future_schema_is_refused_and_left_unchanged(store) -> None:
    store.start_run(_plan("r1")).close()
    store.close()
    _sql(store, "UPDATE meta SET value = '99' WHERE key = 'schema'")
    before = _digest(store.path)

    with pytest.raises(
        StateStoreError,
        match=rf"written by a Graflow with state schema 99, this one reads schema {SCHEMA_VERSION}",
    ):
        LocalStore(store.directory)

    assert _digest(store.path) == before


def test_a_damaged_store_is_a_state_store_error_when_read_never_a_sqlite_error(store, journals) -> None:
    for n in range(40):
        journal = store.start_run(_plan(f"run-{n}", "flow", *(f"t{i}" for i in range(20))))
        journal.record(_step("t0"), "x" * 2000)
        journal.finish(RunStatus.SUCCEEDED)
    store.close()
    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = 4096
    with store.path.open("r+b") as file:  # leave the header page alone, smash the tables' pages
        file.seek(3 * page)
        file.write(os.urandom(6 * page))
    before = _digest(store.path)

    with pytest.raises(StateStoreError, match=r"runs.db (cannot be read|is damaged)"):
        damaged = LocalStore(store.directory)
        for info in damaged.runs():
            damaged.load(info.run_id)

    assert _digest(store.path) == before


def test_an_unusable_state_directory_is_a_state_store_error_saying_what_to_check(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    with pytest.raises(StateStoreError, match=r"the state directory .*file/state cannot be used .*writable"):
        LocalStore(not_a_directory / "state")


class _FillingStore(LocalStore):
    """The disk fills up after ``room`` steps: SQLite itself says ``database or disk is full``."""

    room = 1

    def record_step(self, run_id: str, seq: int, step: object, *, done: int, total: int) -> None:
        if seq > self.room:
            with self.reading() as db:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                db.execute(f"PRAGMA max_page_count = {pages}")
        super().record_step(run_id, seq, step, done=done, total=total)  # type: ignore[arg-type]


def test_a_step_that_cannot_be_written_names_the_run_and_how_to_resume_it(tmp_path: Path, journals) -> None:
    store = _FillingStore(tmp_path)
    journal = store.start_run(_plan("r1"))
    journals.append(journal)
    journal.record(_step("a"), "fits")

    with pytest.raises(StateStoreError) as caught:
        journal.record(_step("b"), "x" * 100_000)

    message = str(caught.value)
    assert "run 'r1' stopped: its state could not be written" in message
    assert "database or disk is full" in message
    assert f"`graflow resume r1 --state-dir {tmp_path}`" in message
    assert [c.task_id for c in LocalStore(tmp_path).completions("r1")] == ["a"]
