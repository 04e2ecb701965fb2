"""``graflow runs`` and ``graflow runs show`` (SPEC section 16): the history a state store keeps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.core.cli.output import Run, table_rows

#: Three tasks, one of which iterates twice and one of which adds a task at run time; a group.
SHAPES = """
from pathlib import Path

from graflow import task, workflow
from graflow.core.task import TaskWrapper

HERE = Path(__file__).resolve().parent

with workflow("shapes") as shapes:

    @task(inject_context=True)
    def poll(ctx, data=None):
        if ctx.cycle_count < 2:
            ctx.next_iteration(ctx.cycle_count)
        return ctx.cycle_count

    @task(inject_context=True)
    def route(ctx):
        ctx.next_task(TaskWrapper("cleanup", lambda: "cleaned"))
        return "routed"

    @task
    def left():
        return "l"

    @task
    def right():
        if (HERE / "break-right").exists():
            raise RuntimeError("right is broken")
        return "r"

    poll >> route >> (left | right).set_group_name("sides")
"""

SIMPLE = """
from graflow import task, workflow

with workflow("{name}") as flow:

    @task
    def only():
        return "{name}"
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _run(cli: Run, path: Path, state: Path) -> str:
    code, out, err = cli("run", path, "--state-dir", state)
    return out.splitlines()[0].split()[1]


def _runs_json(cli: Run, *args: str | Path) -> list[dict[str, object]]:
    code, out, err = cli("runs", "--json", *args)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_runs_lists_every_run_newest_first_with_its_counts(write, cli: Run, state: Path) -> None:
    ids = []
    for name in ("daily", "weekly"):
        ids.append(_run(cli, write(f"{name}.py", SIMPLE.format(name=name)), state))
        time.sleep(0.01)

    code, out, err = cli("runs", "--state-dir", state)

    assert code == 0, err
    rows = table_rows(out, 7)
    assert list(rows) == list(reversed(ids))
    workflow, status, started, finished, tasks, error = rows[ids[0]]
    assert (workflow, status, tasks, error) == ("daily", "succeeded", "1/1", "")
    assert time.strptime(started, "%Y-%m-%dT%H:%M:%SZ") and time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ")


def test_runs_json_prints_the_objects_scripts_rely_on(write, cli: Run, state: Path, tmp_path: Path) -> None:
    (tmp_path / "break-right").touch()
    run_id = _run(cli, write("shapes.py", SHAPES), state)

    [shown] = _runs_json(cli, "--state-dir", state)

    assert shown["run_id"] == run_id
    assert shown["workflow"] == "shapes"
    assert shown["status"] == "failed"
    assert isinstance(shown["started_at"], str) and isinstance(shown["finished_at"], str)
    assert (shown["tasks_done"], shown["tasks_total"]) == (4, 5)  # poll, route, cleanup, left
    assert "RuntimeError: right is broken" in str(shown["error"])


def test_runs_filters_by_status_workflow_and_limit(write, cli: Run, state: Path, tmp_path: Path) -> None:
    daily = write("daily.py", SIMPLE.format(name="daily"))
    first = _run(cli, daily, state)
    time.sleep(0.01)
    second = _run(cli, daily, state)
    time.sleep(0.01)
    (tmp_path / "break-right").touch()
    failed = _run(cli, write("shapes.py", SHAPES), state)

    assert [r["run_id"] for r in _runs_json(cli, "--state-dir", state, "--status", "failed")] == [failed]
    assert [r["run_id"] for r in _runs_json(cli, "--state-dir", state, "--workflow", "daily")] == [
        second,
        first,
    ]
    assert [r["run_id"] for r in _runs_json(cli, "--state-dir", state, "--limit", "2")] == [failed, second]
    code, out, _ = cli("runs", "--state-dir", state, "--limit", "2")
    assert list(table_rows(out, 7)) == [failed, second]
    assert "the 2 newest runs are shown; --limit N shows more" in out


def test_runs_of_an_empty_store_says_so_and_where_it_looked(cli: Run, state: Path) -> None:
    code, out, _ = cli("runs", "--state-dir", state, "--status", "suspended")

    assert code == 0
    assert out == f"no runs with status 'suspended' in the state directory {state}\n"
    assert _runs_json(cli, "--state-dir", state) == []


def test_an_unknown_status_is_a_usage_error_listing_the_statuses(cli: Run) -> None:
    code, _, err = cli("runs", "--status", "sleeping")

    assert code == 2
    assert "choose from running, succeeded, failed, suspended, canceled" in err.replace("'", "")


def test_runs_show_lists_the_run_task_by_task(write, cli: Run, state: Path) -> None:
    run_id = _run(cli, write("shapes.py", SHAPES), state)

    code, out, err = cli("runs", "show", run_id, "--state-dir", state)

    assert code == 0, err
    assert out.splitlines()[0] == f"run {run_id}: workflow 'shapes', succeeded"
    rows = table_rows(out, 6)
    assert list(rows) == ["poll", "route", "sides", "left", "right", "cleanup (added at run time)"]
    status, occurrences, worker, _duration, finished = rows["poll"]
    assert (status, occurrences, worker) == ("done", "2", "driver")
    assert time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ")
    assert rows["cleanup (added at run time)"][:2] == ["done", "1"]


def test_runs_show_marks_what_did_not_run_and_shows_the_error(
    write, cli: Run, state: Path, tmp_path: Path
) -> None:
    (tmp_path / "break-right").touch()
    run_id = _run(cli, write("shapes.py", SHAPES), state)

    code, out, _ = cli("runs", "show", run_id, "--state-dir", state)

    rows = table_rows(out, 6)
    assert rows["right"] == ["not run", "-", "-", "-", "-"]
    assert rows["sides"][0] == "not run"
    assert rows["left"][0] == "done"  # recorded when it finished, though its group failed
    assert f"no live driver: `graflow resume {run_id} --state-dir {state}` carries it on" in out
    assert out.splitlines()[-1] == (
        "error: ParallelGroupError: parallel group 'sides' failed under strict: 1 of 2 members failed "
        "(right: RuntimeError: right is broken)"
    )


def test_runs_show_json_has_the_run_and_its_tasks(write, cli: Run, state: Path) -> None:
    run_id = _run(cli, write("shapes.py", SHAPES), state)

    code, out, _ = cli("runs", "show", run_id, "--state-dir", state, "--json")

    shown = json.loads(out)
    assert (shown["run_id"], shown["status"], shown["rerun_of"], shown["holder"]) == (
        run_id,
        "succeeded",
        None,
        None,
    )
    tasks = {t["task_id"]: t for t in shown["tasks"]}
    assert set(tasks["poll"]) == {
        "task_id",
        "kind",
        "status",
        "occurrences",
        "worker",
        "duration",
        "finished_at",
        "added",
    }
    assert (tasks["poll"]["occurrences"], tasks["sides"]["kind"], tasks["cleanup"]["added"]) == (
        2,
        "group",
        True,
    )


def test_store_options_may_come_before_show(write, cli: Run, state: Path) -> None:
    run_id = _run(cli, write("daily.py", SIMPLE.format(name="daily")), state)

    code, out, err = cli("runs", "--state-dir", state, "--json", "show", run_id)

    assert code == 0, err
    assert json.loads(out)["run_id"] == run_id


def test_runs_show_of_an_unknown_run_exits_2(cli: Run, state: Path) -> None:
    code, out, err = cli("runs", "show", "nope", "--state-dir", state)

    assert code == 2
    assert out == ""
    assert err.startswith(f"graflow: error: no run 'nope' in the state directory {state}")


def test_a_failure_without_a_message_is_recorded_by_its_type_alone(write, cli: Run, state: Path) -> None:
    path = write(
        "lookup.py",
        """
        from graflow import task, workflow

        with workflow("lookup") as lookup:

            @task
            def find():
                raise LookupError()
        """,
    )
    _run(cli, path, state)

    [shown] = _runs_json(cli, "--state-dir", state)

    assert shown["error"] == "task 'find': LookupError"
