"""``graflow schedule add|list|pause|resume|remove`` (SPEC 19), in a local state directory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from graflow.schedule import schedules_for
from graflow.schedule.scheduler import Scheduler
from tests.core.cli.output import Run

FLOW = """
from graflow import task, workflow

with workflow("etl") as etl:

    @task
    def extract():
        return 1
"""


@pytest.fixture
def flow(write: Any) -> Path:
    return write("etl.py", FLOW)  # type: ignore[no-any-return]


def test_add_list_pause_resume_remove(cli: Run, flow: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, out, err = cli(
        "schedule",
        "add",
        "nightly",
        flow,
        "--cron",
        "0 2 * * *",
        "--timezone",
        "Europe/Paris",
        "--set",
        "limit=10",
        "--state-dir",
        state,
    )
    assert code == 0, err
    assert "schedule 'nightly' added: workflow 'etl', cron 0 2 * * * (Europe/Paris), next at " in out
    assert f"graflow scheduler --state-dir {state}" in out

    code, out, _ = cli("schedule", "list", "--json", "--state-dir", state)
    [listed] = json.loads(out)
    assert (listed["name"], listed["cron"], listed["timezone"], listed["queue"]) == (
        "nightly",
        "0 2 * * *",
        "Europe/Paris",
        "memory",
    )
    assert listed["target"] == str(flow.resolve()) and listed["channel"] == {"limit": 10}
    assert listed["paused"] is False and listed["next_at"].endswith(":00:00Z") and listed["fired"] == 0

    assert cli("schedule", "pause", "nightly", "--state-dir", state)[0] == 0
    assert json.loads(cli("schedule", "list", "--json", "--state-dir", state)[1])[0]["paused"] is True
    code, out, _ = cli("schedule", "list", "--state-dir", state)
    assert "| nightly  | cron 0 2 * * * (Europe/Paris) | paused |" in out
    assert cli("schedule", "resume", "nightly", "--state-dir", state)[0] == 0
    assert cli("schedule", "remove", "nightly", "--state-dir", state)[0] == 0
    assert json.loads(cli("schedule", "list", "--json", "--state-dir", state)[1]) == []


def test_resume_skips_the_ticks_that_passed_while_paused(cli: Run, flow: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = {"state_dir": str(state)}
    cli("schedule", "add", "often", flow, "--every", "1", "--state-dir", state)
    cli("schedule", "pause", "often", "--state-dir", state)
    time.sleep(2.2)

    cli("schedule", "resume", "often", "--state-dir", state)
    scheduler = Scheduler(config)
    scheduler.run_once(time.time())
    scheduler.close(wait=True)

    assert schedules_for(config).state("often").fired == 0  # the missed ticks were skipped, not fired


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--cron", "0 25 * * *"], "is not a cron expression (Bad hour)"),
        (["--cron", "0 2 * * *", "--timezone", "Mars/Base"], "unknown timezone 'Mars/Base'"),
        ([], "needs exactly one of --cron EXPR, --every SECONDS or --after OTHER"),
        (["--after", "nobody"], "no schedule 'nobody' in the state directory"),
        (
            ["--every", "60", "--queue", "redis"],
            "keep the schedule in Redis (--redis-url URL --key-prefix P)",
        ),
    ],
)
def test_a_bad_schedule_is_refused_at_add_with_one_line(
    cli: Run, flow: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    code, _, err = cli("schedule", "add", "nightly", flow, *arguments, "--state-dir", tmp_path / "state")

    assert code == 2
    assert message in err and err.count("\n") == 1


def test_a_missing_file_or_workflow_is_refused_at_add(cli: Run, flow: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, _, err = cli("schedule", "add", "x", tmp_path / "nope.py", "--every", "60", "--state-dir", state)
    assert code == 2 and "no such file" in err
    code, _, err = cli("schedule", "add", "x", f"{flow}:other", "--every", "60", "--state-dir", state)
    assert code == 2 and "no workflow 'other'" in err


def test_unknown_schedules_exit_2_and_the_command_lists_its_commands(cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("schedule", "pause", "nope", "--state-dir", tmp_path / "state")
    assert code == 2 and "no schedule 'nope'" in err
    code, _, err = cli("schedule")
    assert code == 2 and "choose a command: add, list, remove, pause or resume" in err
    code, out, _ = cli("schedule", "add", "--help")
    assert code == 0 and 'graflow schedule add nightly flows/etl.py:etl --cron "0 2 * * *"' in out
