"""Every key a run writes expires: ``run_ttl`` after it finishes, or on its own once its driver is gone.

The keys of the fleet itself (the task stream, the dead letters, the worker set, the run
index) live as long as the fleet; everything else under the prefix must carry a ttl.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from graflow.core.decorators import task
from graflow.core.routing import DEFAULT_QUEUE
from graflow.core.workflow import workflow
from graflow_redis.keys import RUN_KEYS_TTL, Keys
from tests.redis.thread_worker import ThreadWorker
from tests.support.waiting import wait_until


def _fleet_keys(prefix: str) -> set[str]:
    keys = Keys(prefix)
    return {*keys.lanes(DEFAULT_QUEUE), keys.dead, keys.workers, keys.runs, keys.queues}


def _ttls(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Milliseconds left of every key of ``prefix`` but the fleet's own (-1: never expires)."""
    names = [k.decode() for k in client.scan_iter(match=f"{{{prefix}*", count=1000)]
    fleet, heartbeats = _fleet_keys(prefix), Keys(prefix).worker("")
    names = [n for n in names if n not in fleet and not n.startswith(heartbeats)]
    return {name: int(client.pttl(name)) for name in names}


def test_a_finished_runs_keys_and_channel_are_kept_run_ttl(
    redis_url: str, key_prefix: str, redis_client: redis.Redis, thread_worker: ThreadWorker
) -> None:
    with workflow("expiring") as wf:

        @task(inject_context=True)
        def write(ctx: Any) -> int:
            channel = ctx.get_channel()
            channel.set("plain", {"a": 1})
            channel.set("short", 1, ttl=5)
            channel.append("log", "x")
            channel.atomic_add("count", 2)
            return 1

    config = {"redis_url": redis_url, "key_prefix": key_prefix, "run_ttl": 60}
    assert wf.execute(queue_backend="redis", channel_backend="redis", config=config) == 1

    ttls = _ttls(redis_client, key_prefix)
    assert {name.rsplit(":", 1)[1] for name in ttls if ":ch:" in name} >= {"plain", "short", "log", "count"}
    # Bookkeeping keeps its own, shorter life: done markers (done_ttl), applied writes (a day).
    run_keys = {n: left for n, left in ttls.items() if (":ch:" in n or ":run:" in n) and ":applied:" not in n}
    assert {name: left for name, left in run_keys.items() if not 0 < left <= 60_000} == {}
    assert {name: left for name, left in ttls.items() if left < 0} == {}
    assert [left for name, left in ttls.items() if name.endswith(":v:short")][0] <= 5_000


def test_the_keys_of_a_run_whose_driver_was_killed_expire_on_their_own(
    redis_url: str,
    key_prefix: str,
    redis_client: redis.Redis,
    start_worker: Callable[..., ThreadWorker],
    tmp_path: Path,
) -> None:
    start_worker()
    started, release = tmp_path / "started", tmp_path / "release"
    driver = textwrap.dedent(
        f"""
        import os, time
        from graflow.core.decorators import task
        from graflow.core.workflow import workflow
        with workflow("abandoned") as wf:
            @task(inject_context=True)
            def first(ctx):
                ctx.get_channel().set("kept", 1)
                ctx.get_channel().append("log", "first")
                return 1
            @task
            def second():
                open({str(started)!r}, "w").close()
                while not os.path.exists({str(release)!r}):
                    time.sleep(0.01)
            first >> second
        wf.execute(queue_backend="redis", channel_backend="redis",
                   config={{"redis_url": {redis_url!r}, "key_prefix": {key_prefix!r}}})
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", driver], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(started.exists, 30, "the second task to start")
    finally:
        process.kill()
        process.wait(10)
        release.touch()  # the worker's task ends; its outcome goes to a reply list nobody reads

    ttls = _ttls(redis_client, key_prefix)
    assert any(name.endswith(":v:kept") for name in ttls) and any(name.endswith(":v:log") for name in ttls)
    never = sorted(name for name, left in ttls.items() if left == -1)
    assert never == []
    assert all(left <= RUN_KEYS_TTL * 1000 for left in ttls.values())
