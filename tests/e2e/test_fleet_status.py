"""`graflow-worker status`, the liveness check and the metrics endpoint, against a live fleet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import workflow
from graflow.queue import QueueBackend
from tests.e2e.e2e_support import worker_command
from tests.support.ports import free_port
from tests.support.waiting import wait_until


def status(fleet, *args: str, program: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = program or [*worker_command(), "status"]
    return subprocess.run(
        [*command, "--redis-url", fleet.redis_url, "--key-prefix", fleet.key_prefix, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_in_background(fleet, build) -> tuple[ExecutionContext, threading.Thread]:
    with workflow("status") as wf:
        build()
    config = {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix}
    context = ExecutionContext.create(
        wf.graph, queue_backend=QueueBackend.REDIS, channel_backend="redis", config=config
    )
    thread = threading.Thread(target=WorkflowEngine().execute, args=(context,), daemon=True)
    thread.start()
    return context, thread


def test_status_lists_the_live_fleet_what_each_runs_and_its_counters(fleet) -> None:
    first = fleet.start("alpha", "--max-concurrent-tasks", "3")
    fleet.start("beta", "--max-concurrent-tasks", "5")

    def build() -> None:
        @task(inject_context=True)
        def quick(ctx: TaskExecutionContext) -> int:
            return 1

        @task(inject_context=True)
        def slow(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().set("slow_started", True)
            while not ctx.get_channel().get("release"):
                time.sleep(0.05)
            return "released"

        quick >> slow

    context, thread = run_in_background(fleet, build)
    wait_until(lambda: context.channel.get("slow_started"), 30, "the slow task to start")
    wait_until(lambda: "running 'slow'" in status(fleet).stdout, 30, "status to show the running task")

    text = status(fleet).stdout
    assert text.splitlines()[0].startswith(f"fleet {fleet.key_prefix!r}: 2 live worker(s), 1 task(s) running")
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:5]}
    assert rows["WORKER"][:6] == ["WORKER", "HOST", "PID", "QUEUES", "STATE", "RUNNING"]
    assert rows["alpha"][2:5] == [str(first.pid), "default", "running"]
    assert rows["alpha"][5].endswith("/3")
    assert rows["beta"][5].endswith("/5")
    assert ["default", "0", "1", "2", "worker(s)"] in [line.split() for line in text.splitlines()]

    report = json.loads(status(fleet, "--json").stdout)
    workers = {w["worker_id"]: w for w in report["workers"]}
    assert set(workers) == {"alpha", "beta"}
    running = [t["task_id"] for w in workers.values() for t in w["running"]]
    assert running == ["slow"]
    assert sum(w["tasks_processed"] for w in workers.values()) == 1  # quick is done
    assert report["queue_depth"] == 0
    assert report["queues"] == {"default": {"waiting": 0, "running": 1}}
    assert report["dead_letter_count"] == 0

    context.channel.set("release", True)
    thread.join(30)
    assert context.get_result("slow") == "released"


def test_a_stopped_worker_leaves_the_fleet(fleet) -> None:
    leaving = fleet.start("leaving")
    fleet.start("staying")
    leaving.signal(signal.SIGTERM)
    assert leaving.wait(30) == 0
    report = json.loads(status(fleet, "--json").stdout)
    assert [w["worker_id"] for w in report["workers"]] == ["staying"]


def test_status_with_no_worker_says_how_to_start_one(fleet) -> None:
    done = status(fleet)
    assert done.returncode == 0
    assert "0 live worker(s)" in done.stdout
    assert f"no live worker: start one with `graflow-worker --key-prefix {fleet.key_prefix}" in done.stdout


def test_graflow_fleet_subcommand_shows_the_same_fleet(fleet) -> None:
    fleet.start("via-graflow")
    done = status(fleet, program=[sys.executable, "-m", "graflow", "fleet"])
    assert done.returncode == 0, done.stderr
    assert "1 live worker(s)" in done.stdout
    assert "via-graflow" in done.stdout


def test_status_self_is_healthy_while_the_worker_runs_and_not_after(fleet, tmp_path: Path) -> None:
    health = tmp_path / "health"
    worker = fleet.start("probed", "--health-file", str(health))
    wait_until(health.exists, 30, "the health file")
    probe = subprocess.run(
        [*worker_command(), "status", "--self"],
        env={**os.environ, "GRAFLOW_HEALTH_FILE": str(health)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith("ok: last heartbeat")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    probe = subprocess.run(
        [*worker_command(), "status", "--self", "--health-file", str(health)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 1
    assert "no health file" in probe.stderr


def test_metrics_endpoint_counts_tasks_and_reads_queue_gauges(fleet) -> None:
    port = free_port()
    fleet.start("metered", "--metrics-port", str(port))

    def build() -> None:
        @task
        def ok() -> int:
            return 1

        @task
        def fails() -> None:
            raise ValueError("counted")

        ok >> fails

    with workflow("metrics") as wf:
        build()
    config = {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix}
    context = ExecutionContext.create(wf.graph, queue_backend=QueueBackend.REDIS, config=config)
    with pytest.raises(ValueError, match="counted"):
        WorkflowEngine().execute(context)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    failed = 'graflow_worker_tasks_total{queue="default",status="failed",worker_id="metered"} 1.0'
    wait_until(lambda: failed in scrape(), 30, "the failed task in the metrics")
    body = scrape()
    assert 'graflow_worker_tasks_total{queue="default",status="succeeded",worker_id="metered"} 1.0' in body
    assert (
        'graflow_worker_task_duration_seconds_count{queue="default",status="failed",worker_id="metered"} 1.0'
        in body
    )
    assert 'graflow_worker_tasks_in_flight{worker_id="metered"} 0.0' in body
    assert f'graflow_queue_depth{{key_prefix="{fleet.key_prefix}",queue="default"}} 0.0' in body
    assert f'graflow_queue_running{{key_prefix="{fleet.key_prefix}",queue="default"}} 0.0' in body
    assert f'graflow_dead_letters{{key_prefix="{fleet.key_prefix}"}} 0.0' in body


def test_sigint_stops_a_worker_like_sigterm(fleet) -> None:
    worker = fleet.start("interrupted")
    worker.signal(signal.SIGINT)
    assert worker.wait(30) == 0
    assert '"event": "worker_stopped"' in worker.log()
    assert "interrupted" not in {w["worker_id"] for w in fleet.queue().workers()}


def test_a_second_signal_hands_running_tasks_back_and_exits_at_once(fleet) -> None:
    worker = fleet.start("impatient-user", "--graceful-shutdown-timeout", "60")

    def build() -> None:
        @task(inject_context=True)
        def stuck(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().set("stuck_started", True)
            while not ctx.get_channel().get("release"):
                time.sleep(0.05)
            return "done"

    context, thread = run_in_background(fleet, build)
    wait_until(lambda: context.channel.get("stuck_started"), 30, "the task to start")
    worker.signal(signal.SIGTERM)
    wait_until(lambda: '"event": "worker_stopping"' in worker.log(), 30, "the worker to start draining")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 1
    assert '"event": "worker_forced_exit"' in worker.log()
    assert '"released": 1' in worker.log()
    taker = fleet.start("taker")
    context.channel.set("release", True)
    thread.join(60)
    assert context.get_result("stuck") == "done"
    assert taker.process.poll() is None
