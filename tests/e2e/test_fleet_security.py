"""Security defaults with real processes: ``graflow-worker``, ``graflow run`` and ``graflow resume``.

Forged pickles create a marker file when loaded (``tests.support.forgery``); no marker file
afterwards proves that no process unpickled them. "Not on loopback" is a ``redis-server``
of the test's own listening on a non-loopback address of this machine too.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow_redis.errors import SignatureError
from graflow_redis.queue import DistributedTaskQueue
from graflow_redis.signing import Purpose, Sealer, Slot
from tests.e2e.conftest import Fleet
from tests.support.forgery import marker_pickle, non_loopback_address
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.waiting import wait_until

KEY = "fleet-secret"

FLOW = """
from graflow import task, workflow, TaskExecutionContext

with workflow("sealed") as wf:

    @task
    def extract() -> int:
        return 20

    @task(inject_context=True)
    def load(ctx: TaskExecutionContext) -> str:
        return f"total={ctx.get_result('extract') + 1}"

    extract >> load
"""


def graflow(*args: str, cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRAFLOW_SECRET_KEY")}
    if key is not None:
        environ["GRAFLOW_SECRET_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "graflow", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def remote_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateRedis, str]]:
    """A private ``redis-server`` and the URL that reaches it through a non-loopback address."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to listen on")
    with start_private_redis(
        tmp_path_factory.mktemp("redis"), ports=range(6392, 6499), also_bind=address
    ) as server:
        yield server, server.url_at(address)


# --- forged payloads ---------------------------------------------------------------------------


def test_a_keyed_worker_dead_letters_forged_entries_without_unpickling_them(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.start("strict", "--secret-key", KEY)
    queue = fleet.queue(secret_key=KEY)
    unsigned, guessed = tmp_path / "unsigned-ran", tmp_path / "guessed-key-ran"
    forged_with_a_guess = Sealer(["a-guess"]).seal(
        Slot(Purpose.TASK, fleet.key_prefix, "run-x", "forged-2"), marker_pickle(guessed)
    )
    for uid, payload in (("forged-1", marker_pickle(unsigned)), ("forged-2", forged_with_a_guess)):
        fields = {"uid": uid, "task": "evil", "session": "run-x", "reply": "", "payload": payload}
        queue.client.xadd(queue.keys.tasks, fields)  # type: ignore[arg-type]

    wait_until(lambda: len(queue.dead_letters()) == 2, 30, "two dead letters")
    reasons = {letter["uid"]: letter["reason"] for letter in queue.dead_letters()}
    assert "is not signed (an unsigned pickle)" in reasons["forged-1"]
    assert "has a signature that does not match the key of this process" in reasons["forged-2"]
    assert not unsigned.exists() and not guessed.exists()

    with workflow("after_the_attack") as wf:
        task("honest")(lambda: "still serving")
    assert (
        wf.execute(queue_backend="redis", channel_backend="redis", config=config(fleet, KEY))
        == "still serving"
    )
    queue.close()


def test_a_forged_channel_parameter_is_refused_on_a_real_worker(fleet: Fleet, tmp_path: Path) -> None:
    fleet.start("strict", "--secret-key", KEY)
    marker = tmp_path / "pwned"
    with workflow("forged_parameter") as wf:

        @task
        def train(settings: dict[str, int]) -> int:
            return settings["depth"]

    context = wf.create_context(queue_backend="redis", channel_backend="redis", config=config(fleet, KEY))
    context.channel.set("settings", {"depth": 3})
    client = redis.Redis.from_url(fleet.redis_url)
    client.set(f"{{{fleet.key_prefix}:ch:{context.session_id}}}:v:settings", marker_pickle(marker))

    with pytest.raises(SignatureError) as refused:
        WorkflowEngine().execute(context)
    assert "the value of channel key 'settings'" in str(refused.value) and "is not signed" in str(
        refused.value
    )
    assert not marker.exists()
    client.close()


def test_graflow_resume_refuses_a_forged_plan_step_or_result(fleet: Fleet, tmp_path: Path) -> None:
    fleet.start("strict", "--secret-key", KEY)
    source = tmp_path / "flow.py"
    source.write_text(FLOW)
    store = ["--redis-url", fleet.redis_url, "--key-prefix", fleet.key_prefix]
    ran = graflow("run", str(source), "--queue", "redis", *store, cwd=tmp_path, key=KEY)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run_id = ran.stdout.split()[1]
    client = redis.Redis.from_url(fleet.redis_url)
    base = f"{{{fleet.key_prefix}}}:run:{run_id}"
    (step,) = [k for k in client.lrange(f"{base}:order", 0, -1) if b"load" in k]
    places = {
        "plan": (lambda blob: client.set(f"{base}:plan", blob), lambda: client.get(f"{base}:plan")),
        "step": (
            lambda blob: client.hset(f"{base}:steps", step, blob),
            lambda: client.hget(f"{base}:steps", step),
        ),
        "result": (
            lambda blob: client.hset(f"{base}:results", "load", blob),
            lambda: client.hget(f"{base}:results", "load"),
        ),
    }
    assert graflow("resume", run_id, *store, cwd=tmp_path, key=KEY).returncode == 0  # untouched: fine

    for name, (write, read) in places.items():
        genuine, marker = read(), tmp_path / f"{name}-ran"
        write(marker_pickle(marker))
        resumed = graflow("resume", run_id, *store, cwd=tmp_path, key=KEY)
        output = resumed.stdout + resumed.stderr
        assert resumed.returncode != 0, output
        assert "is not signed (an unsigned pickle)" in output and "Nothing of it was unpickled" in output
        assert not marker.exists(), name
        write(genuine)
    client.close()


# --- keys: required off loopback, rotated without downtime ---------------------------------------


def test_off_loopback_a_worker_and_a_driver_need_a_key_or_allow_unsigned(
    fleet: Fleet, remote_redis: tuple[PrivateRedis, str], tmp_path: Path
) -> None:
    server, remote_url = remote_redis
    refused = fleet.start("keyless", wait=False, redis_url=remote_url)
    assert refused.wait(30) == 2
    log = refused.log()
    assert f"Redis at {remote_url} is not on loopback" in log
    assert "GRAFLOW_SECRET_KEY=<key>" in log and "--allow-unsigned" in log

    source = tmp_path / "flow.py"
    source.write_text(FLOW)
    store = ["--redis-url", remote_url, "--key-prefix", fleet.key_prefix]
    driver = graflow("run", str(source), "--queue", "redis", *store, cwd=tmp_path)
    assert driver.returncode == 2 and "is not on loopback" in driver.stdout + driver.stderr
    listing = graflow("runs", *store, cwd=tmp_path)
    assert listing.returncode == 2 and "is not on loopback" in listing.stderr

    fleet.start("told", "--allow-unsigned", wait=False, redis_url=remote_url)
    local = DistributedTaskQueue(redis_url=server.url, key_prefix=fleet.key_prefix)  # loopback: no key needed
    wait_until(lambda: local.workers(), 30, "the worker told --allow-unsigned to heartbeat")
    driver = graflow("run", str(source), "--queue", "redis", *store, "--allow-unsigned", cwd=tmp_path)
    assert driver.returncode == 0, driver.stdout + driver.stderr
    assert "total=21" in driver.stdout
    assert graflow("runs", *store, "--allow-unsigned", cwd=tmp_path).returncode == 0
    local.close()


def test_a_worker_with_new_and_old_keys_serves_a_driver_still_signing_with_the_old(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.start("rotated", "--secret-key", "new,old")
    source = tmp_path / "flow.py"
    source.write_text(FLOW)
    store = ["--redis-url", fleet.redis_url, "--key-prefix", fleet.key_prefix]
    driver = graflow("run", str(source), "--queue", "redis", *store, cwd=tmp_path, key="old,new")
    assert driver.returncode == 0, driver.stdout + driver.stderr
    assert "total=21" in driver.stdout

    run_id = driver.stdout.split()[1]
    client = redis.Redis.from_url(fleet.redis_url)
    base = f"{{{fleet.key_prefix}}}:run:{run_id}"
    result, plan = client.hget(f"{base}:results", "load"), client.get(f"{base}:plan")
    assert result is not None and plan is not None
    slot = Slot(Purpose.RESULT, fleet.key_prefix, run_id, "load")
    assert (
        pickle.loads(Sealer(["new"]).open(slot, result)) == "total=21"
    )  # the worker signs with its first key
    with pytest.raises(SignatureError):
        Sealer(["old"]).open(slot, result)
    Sealer(["old"]).open(Slot(Purpose.PLAN, fleet.key_prefix, run_id), plan)  # the driver with its own
    client.close()


def config(fleet: Fleet, key: str, **extra: Any) -> dict[str, Any]:
    return {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "secret_key": key, **extra}
