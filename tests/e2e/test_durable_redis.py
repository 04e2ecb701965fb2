"""Durable runs on the fleet: a driver killed mid-run is resumed by another process, and no task runs twice.

Real processes throughout: ``graflow run`` drives, two ``graflow-worker`` processes run the
tasks, the driver is SIGKILLed while a group's members are running or queued, the
workflow file is moved away, and ``graflow resume`` (another process, no source file)
finishes the run. Each task appends its name to a file: the file must list every task
exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import redis

from tests.e2e.conftest import Fleet
from tests.support.waiting import wait_until

TASKS = ["extract", "clean", "m1", "m2", "m3", "m4", "aggregate", "publish"]

FLOW = """
import time
from graflow import task, workflow, TaskExecutionContext

EFFECTS = {effects!r}


def effect(name: str, seconds: float) -> None:
    with open(EFFECTS, "a") as f:
        f.write(name + "\\n")
    time.sleep(seconds)


with workflow("durable_fleet") as wf:

    @task
    def extract() -> int:
        effect("extract", 0.2)
        return 10

    @task(inject_context=True)
    def clean(ctx: TaskExecutionContext) -> int:
        effect("clean", 0.2)
        ctx.get_channel().set("factor", 3)
        return ctx.get_result("extract") + 1

    members = []
    for n in range(1, 5):

        @task(f"m{{n}}", inject_context=True)
        def member(ctx: TaskExecutionContext, factor: int, n: int = n) -> int:
            effect(f"m{{n}}", 1.0)
            return ctx.get_result("clean") * factor + n

        members.append(member)

    @task(inject_context=True)
    def aggregate(ctx: TaskExecutionContext) -> int:
        effect("aggregate", 0.2)
        return sum(ctx.get_result("fan").values())

    @task(inject_context=True)
    def publish(ctx: TaskExecutionContext) -> str:
        effect("publish", 0.1)
        return f"total={{ctx.get_result('aggregate')}}"

    fan = (members[0] | members[1] | members[2] | members[3]).set_group_name("fan")
    extract >> clean >> fan >> aggregate >> publish
"""


def _graflow(*args: str, cwd: Path) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRAFLOW_SECRET_KEY")}
    # Unsigned on purpose (these tests are about durability): said so, the loopback warning
    # stays out of the output whose first line must be the run id.
    environ["GRAFLOW_ALLOW_UNSIGNED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "graflow", *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _effects(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _store_args(fleet: Fleet) -> list[str]:
    return ["--redis-url", fleet.redis_url, "--key-prefix", fleet.key_prefix]


def test_a_driver_killed_mid_group_is_resumed_by_the_cli_and_no_task_runs_twice(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.start("one", "--max-concurrent-tasks", "1")
    fleet.start("two", "--max-concurrent-tasks", "1")
    effects = tmp_path / "effects.txt"
    source = tmp_path / "flow.py"
    source.write_text(FLOW.format(effects=str(effects)))

    driver = _graflow("run", str(source), "--queue", "redis", *_store_args(fleet), cwd=tmp_path)
    assert driver.stdout is not None
    first = driver.stdout.readline().split()
    assert first[0] == "run", first
    run_id = first[1]
    # Two members run (one per worker) and two wait in the stream: kill the driver now.
    wait_until(lambda: sum(name.startswith("m") for name in _effects(effects)) >= 2, 30, "the group to start")
    driver.send_signal(signal.SIGKILL)
    driver.wait(10)
    source.rename(tmp_path / "moved-away.py")

    resume = _graflow("resume", run_id, *_store_args(fleet), cwd=tmp_path / "..")
    output, _ = resume.communicate(timeout=120)

    assert resume.returncode == 0, output
    assert output.splitlines()[0] == f"run {run_id}"
    assert "total=" in output
    counts = Counter(_effects(effects))
    assert counts == Counter(TASKS), f"each task once: {counts}\n{fleet.logs()}"

    listed = _graflow("runs", "--json", *_store_args(fleet), cwd=tmp_path)
    out, _ = listed.communicate(timeout=60)
    [info] = [r for r in json.loads(out) if r["run_id"] == run_id]
    assert info["status"] == "succeeded"
    assert info["tasks_done"] == len(TASKS)


def test_resuming_a_run_whose_driver_is_alive_is_refused_naming_it(fleet: Fleet, tmp_path: Path) -> None:
    fleet.start("one")
    effects = tmp_path / "effects.txt"
    source = tmp_path / "flow.py"
    source.write_text(FLOW.format(effects=str(effects)))
    driver = _graflow("run", str(source), "--queue", "redis", *_store_args(fleet), cwd=tmp_path)
    assert driver.stdout is not None
    run_id = driver.stdout.readline().split()[1]
    try:
        wait_until(lambda: "clean" in _effects(effects), 30, "the run to be under way")
        resume = _graflow("resume", run_id, *_store_args(fleet), cwd=tmp_path)
        output, _ = resume.communicate(timeout=60)
        assert resume.returncode == 1, output
        assert f"run {run_id!r} is being executed by" in output
        assert f":{driver.pid}" in output
    finally:
        driver.kill()
        driver.wait(10)


def test_a_finished_runs_keys_expire_after_its_run_ttl(fleet: Fleet, tmp_path: Path) -> None:
    from graflow import task, workflow

    fleet.start("one")
    client = redis.Redis.from_url(fleet.redis_url)
    with workflow("short_lived") as wf:

        @task
        def only() -> str:
            return "done"

        result, context = wf.execute(
            queue_backend="redis",
            channel_backend="redis",
            config={"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "run_ttl": 5},
            ret_context=True,
        )
    assert result == "done"
    run_keys = f"{{{fleet.key_prefix}}}:run:{context.session_id}:*"
    assert list(client.scan_iter(match=run_keys)), "the run was kept"
    wait_until(lambda: not list(client.scan_iter(match=run_keys)), 20, "the run's keys to expire")
