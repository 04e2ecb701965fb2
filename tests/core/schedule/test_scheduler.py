"""Schedulers (SPEC 19): each tick fires once however many watch, as a durable run of the store.

Schedulers here watch a local state directory; the workflow file appends a line per run to
a file next to it (the run's schedule, its tick and the channel's ``who``), so a test can
count firings exactly.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graflow.schedule import Schedule, schedules_for
from graflow.schedule.scheduler import Scheduler
from graflow.state.local import LocalStore
from tests.support.waiting import wait_until

FLOW = """
from pathlib import Path

from graflow import task, workflow

with workflow("stamp") as stamp:

    @task(inject_context=True)
    def note(ctx):
        fired = ctx.get_channel().get("graflow.schedule")
        line = f"{fired['name']} {fired['timestamp']} {ctx.get_channel().get('who', '-')}"
        with (Path(__file__).parent / "fired.txt").open("a") as file:
            file.write(line + "\\n")
        if ctx.get_channel().get("fail"):
            raise RuntimeError("this run fails")
        return line
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "stamp.py"
    path.write_text(textwrap.dedent(FLOW))
    return path


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {"state_dir": str(tmp_path / "state")}


def fired(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fired.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def running(config: dict[str, Any]) -> Iterator[list[Scheduler]]:
    """Schedulers started by the test (``start(n)``), stopped at the end."""
    stop = threading.Event()
    started: list[Scheduler] = []
    threads: list[threading.Thread] = []

    def start(count: int = 1) -> list[Scheduler]:
        for _ in range(count):
            scheduler = Scheduler(config, poll=0.2)
            thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
            thread.start()
            started.append(scheduler)
            threads.append(thread)
        return started

    yield start  # type: ignore[misc]
    stop.set()
    for thread in threads:
        thread.join(10)
    for scheduler in started:
        scheduler.close(wait=True)


def test_two_schedulers_fire_each_tick_once_each_as_a_durable_run(
    flow: Path, config: dict[str, Any], running: Any, tmp_path: Path
) -> None:
    schedules = schedules_for(config)
    schedules.add(Schedule("often", str(flow), every=1, channel={"who": "often"}, queue="memory"))
    running(2)

    wait_until(lambda: len(fired(tmp_path)) >= 4, 30, "four firings")
    time.sleep(0.5)
    lines = fired(tmp_path)

    ticks = Counter(tick for _, tick, _ in lines)
    assert all(count == 1 for count in ticks.values()), ticks  # no tick twice
    assert {name for name, _, _ in lines} == {"often"} and {who for *_, who in lines} == {"often"}
    store = LocalStore(config["state_dir"])
    runs = store.runs()
    assert len(runs) >= len(lines) - 1 and {r.workflow for r in runs} == {
        "stamp"
    }  # each firing is a kept run
    state = schedules.state("often")
    assert state.fired >= len(lines) - 1 and state.last_run in {r.run_id for r in runs}


def test_ticks_missed_while_no_scheduler_ran_fire_once(
    flow: Path, config: dict[str, Any], tmp_path: Path
) -> None:
    schedules = schedules_for(config)
    schedules.add(
        Schedule("hourly", str(flow), every=3600, queue="memory", created_at=time.time() - 10 * 3600)
    )
    scheduler = Scheduler(config)

    scheduler.run_once(time.time())
    scheduler.run_once(time.time())
    scheduler.close(wait=True)

    assert len(fired(tmp_path)) == 1  # ten missed ticks, one run


def test_a_paused_schedule_does_not_fire(flow: Path, config: dict[str, Any], tmp_path: Path) -> None:
    schedules = schedules_for(config)
    schedules.add(Schedule("hourly", str(flow), every=3600, queue="memory", created_at=time.time() - 7200))
    schedules.set_paused("hourly", True)
    scheduler = Scheduler(config)

    scheduler.run_once(time.time())
    scheduler.close(wait=True)

    assert fired(tmp_path) == []


def test_a_schedule_after_another_fires_after_each_success_and_not_after_a_failure(
    flow: Path, config: dict[str, Any], tmp_path: Path
) -> None:
    schedules = schedules_for(config)
    schedules.add(Schedule("etl", str(flow), every=3600, queue="memory", created_at=time.time() - 3600))
    schedules.add(Schedule("report", str(flow), after="etl", queue="memory", channel={"who": "report"}))
    scheduler = Scheduler(config)

    scheduler.run_once(time.time())
    wait_until(lambda: len(fired(tmp_path)) >= 2, 30, "etl, then report")
    scheduler.close(wait=True)

    assert [line[0] for line in fired(tmp_path)] == ["etl", "report"]
    assert schedules.state("report").last_status == "succeeded"


def test_no_schedule_after_a_failed_run(flow: Path, config: dict[str, Any], tmp_path: Path) -> None:
    schedules = schedules_for(config)
    schedules.add(
        Schedule(
            "etl",
            str(flow),
            every=3600,
            queue="memory",
            created_at=time.time() - 3600,
            channel={"fail": True},
        )
    )
    schedules.add(Schedule("report", str(flow), after="etl", queue="memory"))
    scheduler = Scheduler(config)

    scheduler.run_once(time.time())
    scheduler.close(wait=True)

    assert [line[0] for line in fired(tmp_path)] == ["etl"]
    assert schedules.state("etl").last_status == "failed"
    assert schedules.state("report").fired == 0


def test_a_broken_workflow_file_fails_its_firing_and_the_scheduler_goes_on(
    flow: Path, config: dict[str, Any], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('the file is broken')\n")
    schedules = schedules_for(config)
    schedules.add(Schedule("broken", str(broken), every=3600, queue="memory", created_at=time.time() - 3600))
    schedules.add(Schedule("fine", str(flow), every=3600, queue="memory", created_at=time.time() - 3600))
    scheduler = Scheduler(config)

    scheduler.run_once(time.time())
    scheduler.close(wait=True)

    assert schedules.state("broken").last_status == "failed to start"
    assert [line[0] for line in fired(tmp_path)] == ["fine"]


def test_two_scheduler_processes_fire_each_tick_once(
    flow: Path, config: dict[str, Any], tmp_path: Path
) -> None:
    schedules_for(config).add(Schedule("often", str(flow), every=1, queue="memory"))
    command = [
        sys.executable,
        "-m",
        "graflow",
        "scheduler",
        "--state-dir",
        config["state_dir"],
        "--poll",
        "0.2",
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)
    ]
    try:
        wait_until(lambda: len(fired(tmp_path)) >= 4, 60, "four firings")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    lines = fired(tmp_path)
    ticks = Counter(tick for _, tick, _ in lines)
    assert all(count == 1 for count in ticks.values()), ticks
    assert all(process.returncode == 0 for process in processes)  # SIGTERM: a clean stop
