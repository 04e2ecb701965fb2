"""Schedules on the fleet (SPEC 19): two ``graflow-worker --scheduler`` processes, each tick once.

A schedule added by ``graflow schedule add`` (another process) fires every 2 s; its runs'
task runs on the fleet and appends ``tick pid`` to a file. Each tick must appear once;
after ``graflow schedule remove`` no tick fires any more.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import Fleet
from tests.e2e.test_durable_redis import _graflow, _store_args
from tests.support.waiting import wait_until

FLOW = """
import os
from graflow import task, workflow

with workflow("stamp") as stamp:

    @task(inject_context=True)
    def note(ctx):
        with open({effects!r}, "a") as f:
            f.write(f"{{ctx.get_channel().get('graflow.schedule')['tick']}} {{os.getpid()}}\\n")
        return "noted"
"""


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _cli(fleet: Fleet, cwd: Path, *args: str) -> str:
    process = _graflow(*args, *_store_args(fleet), cwd=cwd)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def test_two_scheduling_workers_fire_each_tick_once_until_the_schedule_is_removed(
    fleet: Fleet, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    source = tmp_path / "stamp.py"
    source.write_text(FLOW.format(effects=str(effects)))
    one = fleet.start("one", "--scheduler")
    two = fleet.start("two", "--scheduler")

    _cli(fleet, tmp_path, "schedule", "add", "often", str(source), "--every", "2")
    wait_until(lambda: len(_lines(effects)) >= 4, 60, f"four firings\n{fleet.logs()}")
    _cli(fleet, tmp_path, "schedule", "remove", "often")
    time.sleep(1.0)  # a firing claimed just before the removal may still be finishing
    settled = len(_lines(effects))
    time.sleep(4.5)

    lines = _lines(effects)
    assert len(lines) == settled, "no tick after the removal"
    ticks = Counter(tick for tick, _ in lines)
    assert all(count == 1 for count in ticks.values()), (ticks, fleet.logs())
    assert {int(pid) for _, pid in lines} <= {one.pid, two.pid}  # the tasks ran on the fleet
    listed = json.loads(_cli(fleet, tmp_path, "runs", "--json"))
    assert len([r for r in listed if r["workflow"] == "stamp" and r["status"] == "succeeded"]) == len(lines)
