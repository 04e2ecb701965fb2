"""Redis breaks under a real fleet: restarts, flushes, lost entries, a full memory.

Each test starts its own ``redis-server`` (ports 7200-7299) and real ``graflow-worker``
processes on it, drives a run from a background thread, breaks Redis at a chosen moment
and checks exactly how the run ends: every task's result, how often each task ran, and
the failures recorded. Tasks log each run to a file (they run in other processes).
"""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from graflow.core.decorators import task
from graflow_redis.errors import RedisRefusedError
from tests.support.background_run import Run as BackgroundRun
from tests.support.fleet import Fleet
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until

#: Seconds Redis stays down in a restart: longer than redis-py retries on its own (about 2.5 s).
DOWN = 4.0


@pytest.fixture
def aof_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with start_private_redis(
        tmp_path_factory.mktemp("aof"), ports=range(7200, 7300), append_only=True
    ) as server:
        yield server


def fan_out(members: int, log_path: Path, seconds: float) -> Callable[[], None]:
    """``members`` tasks that each use the channel, sleep and use it again; then a total."""
    log = str(log_path)

    def member(n: int) -> Any:
        @task(f"m{n}", inject_context=True)
        def work(ctx: Any) -> int:
            ctx.get_channel().append("seen", n)
            with open(log, "a") as out:
                out.write(f"m{n}\n")
            time.sleep(seconds)
            ctx.get_channel().set(f"out{n}", n)  # Redis may be down right now: this waits for it
            return n

        return work

    def build() -> None:
        group = member(0)
        for n in range(1, members):
            group = group | member(n)

        @task(inject_context=True)
        def total(ctx: Any) -> int:
            return sum(ctx.get_result(f"m{n}") for n in range(members))

        group >> total

    return build


def runs_of(log_path: Path) -> list[str]:
    return log_path.read_text().split() if log_path.exists() else []


@pytest.mark.parametrize("restarts", [1, 2])
def test_restarts_of_redis_with_an_append_only_file_lose_nothing(
    fleet: Fleet, aof_redis: PrivateRedis, tmp_path: Path, restarts: int
) -> None:
    fleet.redis_url = aof_redis.url
    workers = [fleet.start(f"w{n}", "--max-concurrent-tasks", "2") for n in range(2)]
    log = tmp_path / "runs"
    members = 12
    run = BackgroundRun(
        fan_out(members, log, 0.4), {"redis_url": aof_redis.url, "key_prefix": fleet.key_prefix}
    )
    for done in range(restarts):
        wait_until(lambda done=done: len(runs_of(log)) > 2 + 4 * done, 30, "tasks to run")
        aof_redis.stop()
        time.sleep(DOWN)
        aof_redis.start()

    assert run.wait(90) == sum(range(members))
    ran = runs_of(log)
    assert sorted(set(ran)) == sorted(f"m{n}" for n in range(members))
    assert run.context.store.failures(run.context.session_id) == []  # 0 failed attempts
    assert sorted(set(run.context.channel.get("seen"))) == list(range(members))
    assert [run.context.channel.get(f"out{n}") for n in range(members)] == list(range(members))
    assert all(w.process.poll() is None for w in workers), "a worker died with a restart"
    # A task runs again only if it was running when Redis went down: its entry sat idle past the
    # 2 s visibility timeout while Redis was away. At most the fleet's 4 slots per restart.
    assert len(ran) - members <= 4 * restarts


def test_redis_out_of_memory_fails_the_run_at_once_and_runs_no_task_twice(
    fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with start_private_redis(tmp_path_factory.mktemp("oom"), ports=range(7200, 7300)) as server:
        fleet.redis_url = server.url
        for n in range(2):
            fleet.start(f"w{n}", "--max-concurrent-tasks", "2")
        log = tmp_path / "runs"
        members = 16
        client = redis.Redis.from_url(server.url)
        with capture_logs() as logs:
            run = BackgroundRun(
                fan_out(members, log, 0.5), {"redis_url": server.url, "key_prefix": fleet.key_prefix}
            )
            wait_until(lambda: runs_of(log), 30, "a task to run")
            client.config_set("maxmemory", 1)  # maxmemory-policy is noeviction: every write is refused
            refused_at = time.monotonic()
            with pytest.raises(RedisRefusedError) as caught:
                run.wait(30)
            took = time.monotonic() - refused_at
        client.config_set("maxmemory", 0)

    error = caught.value
    assert error.condition == "OOM"
    assert "is out of memory" in str(error) and "raise maxmemory" in str(error)
    assert took < 5.0
    ran = runs_of(log)
    assert len(ran) == len(set(ran)) <= 4  # each ran once; at most the fleet's four slots' worth
    assert not [e for e in logs if e["event"] == "no_worker_alive"]


def test_a_task_run_twice_counts_once_in_status_prometheus_and_the_driver(
    fleet: Fleet, tmp_path: Path
) -> None:
    ports = {"paused": free_port(range(7200, 7300))}
    paused = fleet.start("paused", "--max-concurrent-tasks", "1", "--metrics-port", str(ports["paused"]))
    ports["taker"] = free_port(range(7200, 7300))  # the first is taken now
    log = tmp_path / "runs"
    members = 3
    run = BackgroundRun(
        fan_out(members, log, 1.0), {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix}
    )
    wait_until(lambda: runs_of(log), 30, "a task to start on the first worker")
    paused.signal(signal.SIGSTOP)  # silent past the visibility timeout: its task goes to another worker
    fleet.start("taker", "--metrics-port", str(ports["taker"]))
    try:
        assert run.wait(60) == sum(range(members))
    finally:
        paused.signal(signal.SIGCONT)  # it finishes its run late: the outcome was recorded already

    def counted(name: str, status: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/metrics", timeout=5) as response:
            body = response.read().decode()
        wanted = (f'status="{status}"', f'worker_id="{name}"')
        lines = [line for line in body.splitlines() if line.startswith("graflow_worker_tasks_total{")]
        return sum(float(line.split()[-1]) for line in lines if all(label in line for label in wanted))

    def heartbeats() -> dict[str, Any]:
        return {w["worker_id"]: w for w in fleet.queue().workers()}

    def settled() -> bool:  # heartbeats publish the counters a moment after the metrics change
        seen = heartbeats()
        return seen.get("paused", {}).get("tasks_duplicate") == 1 and sum(
            w["tasks_processed"] for w in seen.values()
        ) == counted("taker", "succeeded") + counted("paused", "succeeded")

    wait_until(lambda: counted("paused", "duplicate") == 1, 30, "the late run to count as a duplicate")
    wait_until(settled, 10, "the heartbeats to carry the final counters")
    recorded = members + 1  # the members and the total, each recorded once
    status = sum(w["tasks_processed"] for w in heartbeats().values())
    prometheus = sum(counted(name, s) for name in ports for s in ("succeeded", "failed"))
    driver = sum(1 for c in run.context.store.completions(run.context.session_id) if c.worker)
    assert (status, prometheus, driver) == (recorded, recorded, recorded)
    assert runs_of(log).count("m0") == 2  # it really ran twice
    assert len(runs_of(log)) == members + 1
