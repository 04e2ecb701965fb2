"""Signing: with a key, nothing read from Redis is unpickled before its seal for that place holds.

Forged pickles here create a marker file when loaded (``tests.support.forgery``): a test
that finds no marker file afterwards proves that nothing unpickled the forgery.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow.core.resume import store_for
from graflow.remote.codec import dumps
from graflow.remote.envelope import TaskOutcome
from graflow_redis.channel import RedisChannel
from graflow_redis.entry import EntryMeta, encode_outcome
from graflow_redis.errors import OutcomeDecodeError, SignatureError, UntrustedStateError
from graflow_redis.queue import DistributedTaskQueue
from graflow_redis.signing import MAGIC, Purpose, Sealer, Slot, parse_keys
from graflow_redis.store import RedisStore
from tests.redis.test_redis_queue import envelope, fetch_one, rejection, run
from tests.redis.thread_worker import ThreadWorker
from tests.support.forgery import marker_pickle

MakeQueue = Callable[..., DistributedTaskQueue]
KEY = "s3cret"
SLOT = Slot(Purpose.RESULT, "graflow", "run-1", "extract")


def pending_uid(queue: DistributedTaskQueue) -> str:
    """The uid of the one submission waiting on ``queue``'s stream."""
    ((_entry_id, fields),) = queue.client.xrange(queue.keys.tasks)
    return str(fields[b"uid"].decode())


# --- the seal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "elsewhere",
    [
        Slot(Purpose.STEP, "graflow", "run-1", "extract"),
        Slot(Purpose.RESULT, "other-prefix", "run-1", "extract"),
        Slot(Purpose.RESULT, "graflow", "run-2", "extract"),
        Slot(Purpose.RESULT, "graflow", "run-1", "load"),
        Slot(Purpose.RESULT, "graflow", "run-1extract", ""),  # the same text, cut elsewhere
    ],
    ids=["purpose", "prefix", "run", "name", "boundary"],
)
def test_a_sealed_blob_opens_in_its_own_slot_only(elsewhere: Slot) -> None:
    sealer = Sealer([KEY])
    blob = sealer.seal(SLOT, b"payload")
    assert blob.startswith(MAGIC)
    assert sealer.open(SLOT, blob) == b"payload"
    with pytest.raises(SignatureError) as refused:
        sealer.open(elsewhere, blob)
    message = str(refused.value)
    assert "does not match" in message and "copied here from another place" in message
    assert elsewhere.describe() in message


def test_an_altered_blob_does_not_open() -> None:
    sealer = Sealer([KEY])
    blob = sealer.seal(SLOT, pickle.dumps("genuine"))
    with pytest.raises(SignatureError, match="does not match"):
        sealer.open(SLOT, blob.replace(b"genuine", b"evil!!!"))


def test_an_unsigned_blob_is_refused_saying_what_it_holds() -> None:
    with pytest.raises(SignatureError) as refused:
        Sealer([KEY]).open(SLOT, pickle.dumps(1))
    message = str(refused.value)
    assert "the result of task 'extract' of run 'run-1' (key prefix 'graflow') is not signed" in message
    assert "an unsigned pickle" in message and "GRAFLOW_SECRET_KEY" in message


def test_the_first_key_seals_and_every_key_opens() -> None:
    rotated = Sealer(["new", "old"])
    assert Sealer(["new"]).open(SLOT, rotated.seal(SLOT, b"x")) == b"x"
    with pytest.raises(SignatureError):
        Sealer(["old"]).open(SLOT, rotated.seal(SLOT, b"x"))
    assert rotated.open(SLOT, Sealer(["old"]).seal(SLOT, b"y")) == b"y"
    with pytest.raises(SignatureError, match="any of the 2 keys"):
        rotated.open(SLOT, Sealer(["other"]).seal(SLOT, b"z"))


def test_keys_are_read_from_text_bytes_or_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_keys("new, old,,new") == [b"new", b"old"]
    assert parse_keys(b"one,key") == [b"one,key"]
    assert parse_keys(["a,b", b"c"]) == [b"a,b", b"c"]
    assert parse_keys("") == parse_keys(None) == []
    monkeypatch.setenv("GRAFLOW_SECRET_KEY", "new,old")
    from_env = Sealer.from_keys(None)
    assert from_env is not None and from_env.count == 2
    assert Sealer.from_keys("mine") is not None and Sealer.from_keys("mine").count == 1  # type: ignore[union-attr]
    monkeypatch.setenv("GRAFLOW_SECRET_KEY", "")
    assert Sealer.from_keys(None) is None


def test_a_sealer_never_travels_and_never_shows_its_keys() -> None:
    sealer = Sealer(["top-secret", "older-secret"])
    with pytest.raises(TypeError, match="never travels"):
        pickle.dumps(sealer)
    assert "secret" not in repr(sealer)


# --- task entries ------------------------------------------------------------------------------


def test_a_forged_unsigned_entry_is_dead_lettered_unread(
    make_queue: MakeQueue, key_prefix: str, tmp_path: Path
) -> None:
    worker = make_queue(secret_key=KEY)
    worker.ensure_group()
    marker = tmp_path / "pwned"
    worker.client.xadd(
        worker.keys.tasks,
        {
            "uid": "forged-1",
            "task": "evil",
            "session": "run-x",
            "reply": "",
            "payload": marker_pickle(marker),
        },
    )

    assert worker.fetch("w1", count=1, block=0.1) == []
    assert not marker.exists()
    (letter,) = worker.dead_letters()
    assert letter["task"] == "evil"
    assert "is not signed (an unsigned pickle)" in letter["reason"]
    assert (
        f"the task entry of submission forged-1 of run 'run-x' (key prefix {key_prefix!r})"
        in letter["reason"]
    )


def test_a_forged_entry_signed_with_another_key_is_dead_lettered_unread(
    make_queue: MakeQueue, tmp_path: Path
) -> None:
    driver, worker = make_queue(secret_key="the-attackers-guess"), make_queue(secret_key=KEY)
    marker = tmp_path / "pwned"
    future = driver.executor.submit_payload("evil", marker_pickle(marker), session_id="run-x")

    assert worker.fetch("w1", count=1, block=0.5) == []
    assert not marker.exists()
    (letter,) = worker.dead_letters()
    assert "has a signature that does not match the key of this process" in letter["reason"]
    # The driver gets the rejection, signed with the worker's key, which it cannot verify either.
    with pytest.raises(OutcomeDecodeError, match="does not match"):
        future.result(timeout=10)


def test_a_tampered_entry_is_refused(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(secret_key=KEY), make_queue(secret_key=KEY)
    genuine = Sealer([KEY]).seal(
        Slot(Purpose.TASK, driver.key_prefix, "run-1", "any"), dumps(envelope(lambda: 1))
    )
    tampered = genuine[: len(MAGIC) + 32] + dumps(envelope(lambda: "evil"))
    future = driver.executor.submit_payload("job", tampered, session_id="run-1", seal=False)

    assert worker.fetch("w1", count=1, block=0.5) == []
    assert "does not match" in rejection(future).reason


def test_a_signed_entry_replayed_under_another_uid_is_refused(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(secret_key=KEY), make_queue(secret_key=KEY)
    driver.submit(envelope(lambda: "first"))
    ((_id, fields),) = driver.client.xrange(driver.keys.tasks)
    replayed = {**{k.decode(): v for k, v in fields.items()}, "uid": b"replayed-uid"}
    driver.client.xadd(driver.keys.tasks, replayed)  # type: ignore[arg-type]

    assert fetch_one(worker, "w1").uid == fields[b"uid"].decode()  # the genuine one runs
    assert worker.fetch("w1", count=1, block=0.5) == []
    (letter,) = worker.dead_letters()
    assert letter["uid"] == "replayed-uid"
    assert (
        "the task entry of submission replayed-uid" in letter["reason"]
        and "does not match" in letter["reason"]
    )


def test_a_worker_with_a_key_refuses_an_unsigned_entry_naming_the_variable(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(secret_key=KEY)
    future = driver.submit(envelope(lambda: 1))

    assert worker.fetch("w1", count=1, block=0.5) == []
    (letter,) = worker.dead_letters()
    assert "not signed" in letter["reason"] and "GRAFLOW_SECRET_KEY" in letter["reason"]
    # The rejection is signed by the worker: a driver without the key cannot trust it, and says so.
    with pytest.raises(OutcomeDecodeError, match="this driver has no secret key"):
        future.result(timeout=10)


def test_a_worker_without_a_key_says_a_signed_entry_needs_the_key(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(secret_key=KEY), make_queue()
    future = driver.submit(envelope(lambda: 1))

    assert worker.fetch("w1", count=1, block=0.5) == []
    (letter,) = worker.dead_letters()
    assert "the task is signed, but this worker has no secret key" in letter["reason"]
    with pytest.raises(OutcomeDecodeError, match="not signed"):  # nor can the driver trust its rejection
        future.result(timeout=10)


def test_without_a_key_a_foreign_pickle_is_dead_lettered_as_not_an_envelope(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    future = driver.executor.submit_payload("job", pickle.dumps(7))

    assert worker.fetch("w1", count=1, block=0.5) == []
    reason = rejection(future).reason
    assert reason == (
        "the payload is not a Graflow task envelope (an int); it was not written by a graflow driver"
    )


def test_signed_entries_run_when_driver_and_worker_share_the_key(
    make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make_queue(secret_key=KEY)
    monkeypatch.setenv("GRAFLOW_SECRET_KEY", KEY)  # the worker takes it from the environment
    worker = make_queue()
    future = driver.submit(envelope(lambda: "trusted"))
    ((_id, fields),) = driver.client.xrange(driver.keys.tasks)
    assert fields[b"payload"].startswith(MAGIC) and b"sig" not in fields

    delivery = fetch_one(worker, "w1")
    worker.complete(delivery, run(delivery))
    assert future.result(timeout=10).result == "trusted"


# --- outcomes ----------------------------------------------------------------------------------


def test_a_forged_reply_to_a_driver_is_refused_unread(make_queue: MakeQueue, tmp_path: Path) -> None:
    driver = make_queue(secret_key=KEY)
    future = driver.submit(envelope(lambda: 1))
    marker = tmp_path / "pwned"
    driver.client.rpush(
        driver.executor.reply_key, pending_uid(driver).encode() + b"\n" + marker_pickle(marker)
    )

    with pytest.raises(OutcomeDecodeError) as refused:
        future.result(timeout=10)
    assert not marker.exists()
    assert "task 'job': its outcome was refused" in str(refused.value)
    assert "is not signed (an unsigned pickle)" in str(refused.value)


def test_a_signed_outcome_replayed_under_another_uid_is_refused(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(secret_key=KEY), make_queue(secret_key=KEY)
    future = driver.submit(envelope(lambda: 1))
    uid = pending_uid(driver)
    # A genuine outcome of this very task, signed by a worker, for another submission of the run.
    other = EntryMeta("1-0", f"{uid}-other", "job", "run-1", driver.executor.reply_key)
    signed = encode_outcome(
        other, TaskOutcome("job", success=True, result="forged"), worker.sealer, driver.key_prefix
    )
    driver.client.rpush(driver.executor.reply_key, uid.encode() + b"\n" + signed.partition(b"\n")[2])

    with pytest.raises(OutcomeDecodeError) as refused:
        future.result(timeout=10)
    assert f"the outcome for submission {uid} of run 'run-1'" in str(refused.value)
    assert "copied here from another place" in str(refused.value)


def test_an_outcome_for_another_task_is_refused(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(secret_key=KEY), make_queue(secret_key=KEY)
    future = driver.submit(envelope(lambda: 1))
    uid = pending_uid(driver)
    meta = EntryMeta("1-0", uid, "job", "run-1", driver.executor.reply_key)
    signed = encode_outcome(
        meta, TaskOutcome("other", success=True, result="forged"), worker.sealer, driver.key_prefix
    )
    driver.client.rpush(driver.executor.reply_key, signed)

    with pytest.raises(OutcomeDecodeError, match="is the outcome of task 'other', not of this one"):
        future.result(timeout=10)


# --- the channel -------------------------------------------------------------------------------


@pytest.fixture
def channel(redis_url: str, key_prefix: str) -> RedisChannel:
    return RedisChannel("run-1", redis_url=redis_url, key_prefix=key_prefix, secret_key=KEY)


def test_pickled_channel_values_are_sealed_and_numbers_stay_text(channel: RedisChannel) -> None:
    channel.set("config", {"depth": 3})
    channel.set("count", 41)
    channel.append("log", "started")
    raw = channel.client.get(f"{{{channel.key_prefix}:ch:run-1}}:v:config")
    assert raw is not None and raw.startswith(MAGIC)
    assert channel.client.get(f"{{{channel.key_prefix}:ch:run-1}}:v:count") == b"41"
    assert channel.atomic_add("count", 1) == 42
    assert channel.client.lindex(f"{{{channel.key_prefix}:ch:run-1}}:v:log", 0).startswith(MAGIC)  # type: ignore[union-attr]
    assert (channel.get("config"), channel.get("count"), channel.get("log")) == (
        {"depth": 3},
        42,
        ["started"],
    )


def test_a_forged_channel_value_is_refused_unread(channel: RedisChannel, tmp_path: Path) -> None:
    channel.set("config", {"depth": 3})
    marker = tmp_path / "pwned"
    channel.client.set(f"{{{channel.key_prefix}:ch:run-1}}:v:config", marker_pickle(marker))

    with pytest.raises(
        SignatureError, match="the value of channel key 'config' of run 'run-1'.*is not signed"
    ):
        channel.get("config")
    assert not marker.exists()


def test_a_signed_channel_value_copied_to_another_key_or_run_is_refused(
    channel: RedisChannel, redis_url: str, key_prefix: str
) -> None:
    channel.set("admin", False)
    channel.set("limits", {"max": 1})
    raw = channel.client.get(f"{{{key_prefix}:ch:run-1}}:v:limits")
    other_run = RedisChannel("run-2", redis_url=redis_url, key_prefix=key_prefix, secret_key=KEY)
    other_run.set("limits", 0)
    channel.client.set(f"{{{key_prefix}:ch:run-1}}:v:admin", raw)  # type: ignore[arg-type]
    channel.client.set(f"{{{key_prefix}:ch:run-2}}:v:limits", raw)  # type: ignore[arg-type]

    with pytest.raises(SignatureError, match="channel key 'admin' of run 'run-1'.*does not match"):
        channel.get("admin")
    with pytest.raises(SignatureError, match="channel key 'limits' of run 'run-2'.*does not match"):
        other_run.get("limits")


def test_a_list_item_copied_to_another_list_is_refused(channel: RedisChannel, key_prefix: str) -> None:
    channel.append("approved", "alice")
    channel.append("pending", "mallory")
    item = channel.client.lindex(f"{{{key_prefix}:ch:run-1}}:v:pending", 0)
    channel.client.rpush(f"{{{key_prefix}:ch:run-1}}:v:approved", item)  # type: ignore[arg-type]

    with pytest.raises(SignatureError, match="an item of channel list 'approved'.*does not match"):
        channel.get("approved")


def test_a_process_without_a_key_says_a_signed_channel_value_needs_it(
    channel: RedisChannel, redis_url: str, key_prefix: str
) -> None:
    channel.set("config", {"depth": 3})
    keyless = RedisChannel("run-1", redis_url=redis_url, key_prefix=key_prefix)
    with pytest.raises(SignatureError, match="holds a signed value, but this process has no secret key"):
        keyless.get("config")


def test_a_task_on_a_worker_refuses_a_forged_channel_parameter(
    start_worker: Callable[..., ThreadWorker], config: dict[str, Any], tmp_path: Path
) -> None:
    start_worker(secret_key=KEY)
    marker = tmp_path / "pwned"
    with workflow("forged_parameter") as wf:

        @task
        def train(settings: dict[str, int]) -> int:
            return settings["depth"]

    context = wf.create_context(
        queue_backend="redis", channel_backend="redis", config={**config, "secret_key": KEY}
    )
    context.channel.set("settings", {"depth": 3})
    context.channel.client.set(  # type: ignore[attr-defined]
        f"{{{config['key_prefix']}:ch:{context.session_id}}}:v:settings", marker_pickle(marker)
    )
    with pytest.raises(SignatureError, match="the value of channel key 'settings'.*is not signed"):
        WorkflowEngine().execute(context)
    assert not marker.exists()


# --- a run's state ------------------------------------------------------------------------------


def finished_run(
    start_worker: Callable[..., ThreadWorker], config: dict[str, Any], **worker_keys: Any
) -> str:
    """Run ``extract >> load`` on an in-test worker; its run id."""
    start_worker(**worker_keys)
    with workflow("sealed_state") as wf:

        @task
        def extract() -> dict[str, int]:
            return {"rows": 3}

        @task(inject_context=True)
        def load(ctx: Any) -> int:
            return int(ctx.get_result("extract")["rows"]) * 2

        extract >> load
    context = wf.create_context(queue_backend="redis", channel_backend="redis", config=config)
    assert WorkflowEngine().execute(context) == 6
    return context.session_id


def test_plan_steps_and_results_are_sealed_and_the_key_is_not_stored(
    start_worker: Callable[..., ThreadWorker], config: dict[str, Any], redis_client: redis.Redis
) -> None:
    run_id = finished_run(start_worker, {**config, "secret_key": KEY}, secret_key=KEY)
    run = RedisStore(redis_client, config["key_prefix"], secret_key=KEY).keys.run(run_id)
    blobs = [redis_client.get(run.plan), *redis_client.hvals(run.steps), *redis_client.hvals(run.results)]
    assert len(blobs) == 5 and all(b is not None and b.startswith(MAGIC) for b in blobs)
    assert KEY.encode() not in b"".join(b for b in blobs if b is not None)

    saved = RedisStore(redis_client, config["key_prefix"], secret_key=KEY).load(run_id)
    assert "secret_key" not in saved.plan.config
    assert saved.results["load"] == 6


@pytest.mark.parametrize("forged", ["plan", "step", "result"])
def test_forged_run_state_is_refused_unread(
    forged: str,
    start_worker: Callable[..., ThreadWorker],
    config: dict[str, Any],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    keyed = {**config, "secret_key": KEY}
    run_id = finished_run(start_worker, keyed, secret_key=KEY)
    run = RedisStore(redis_client, config["key_prefix"], secret_key=KEY).keys.run(run_id)
    marker = tmp_path / "pwned"
    if forged == "plan":
        redis_client.set(run.plan, marker_pickle(marker))
    elif forged == "step":
        step = redis_client.lindex(run.order, 0)
        redis_client.hset(run.steps, step, marker_pickle(marker))  # type: ignore[arg-type]
    else:
        redis_client.hset(run.results, "load", marker_pickle(marker))

    with pytest.raises(UntrustedStateError) as refused:
        WorkflowEngine().resume(run_id, keyed)
    assert not marker.exists()
    assert "is not signed" in str(refused.value) and "Nothing of it was unpickled" in str(refused.value)


def test_a_result_copied_to_another_task_is_refused(
    start_worker: Callable[..., ThreadWorker], config: dict[str, Any], redis_client: redis.Redis
) -> None:
    keyed = {**config, "secret_key": KEY}
    run_id = finished_run(start_worker, keyed, secret_key=KEY)
    run = RedisStore(redis_client, config["key_prefix"], secret_key=KEY).keys.run(run_id)
    redis_client.hset(run.results, "load", redis_client.hget(run.results, "extract"))  # type: ignore[arg-type]

    with pytest.raises(UntrustedStateError, match="the result of task 'load'.*does not match"):
        store_for(keyed).load(run_id).results["load"]


# --- rotation ----------------------------------------------------------------------------------


def test_a_worker_with_new_and_old_keys_verifies_the_old_and_signs_with_the_new(
    start_worker: Callable[..., ThreadWorker], config: dict[str, Any], redis_client: redis.Redis
) -> None:
    # The driver is one step behind in the rotation: it still signs with the old key.
    run_id = finished_run(start_worker, {**config, "secret_key": "old,new"}, secret_key=["new", "old"])
    run = RedisStore(redis_client, config["key_prefix"], secret_key=KEY).keys.run(run_id)
    plan, result = redis_client.get(run.plan), redis_client.hget(run.results, "load")
    assert plan is not None and result is not None
    prefix = config["key_prefix"]
    Sealer(["old"]).open(Slot(Purpose.PLAN, prefix, run_id), plan)  # written by the driver
    Sealer(["new"]).open(Slot(Purpose.RESULT, prefix, run_id, "load"), result)  # by the worker
    with pytest.raises(SignatureError):
        Sealer(["old"]).open(Slot(Purpose.RESULT, prefix, run_id, "load"), result)
