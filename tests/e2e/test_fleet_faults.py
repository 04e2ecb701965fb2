"""Fault tests with real worker processes: nothing is lost, nothing is silent.

Workers run with a 2 s visibility timeout. Each scenario drives a run from a background
thread, breaks something in the middle (a worker killed or stopped, Redis restarted, bad
entries), and checks how the run ends.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import pytest
import structlog

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from tests.support.background_run import Run, record_start
from tests.support.waiting import wait_until


def sleeper(name: str, seconds: float) -> Any:
    """A task that records where it started (every start: see :func:`record_start`), sleeps, and
    returns the pid that finished it."""

    @task(name, inject_context=True)
    def work(ctx: TaskExecutionContext) -> int:
        record_start(ctx.get_channel(), name)
        time.sleep(seconds)
        return os.getpid()

    return work


def config_for(fleet: Any, **extra: Any) -> dict[str, Any]:
    return {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "visibility_timeout": 2.0, **extra}


def test_sigkill_mid_tasks_every_task_completes_on_the_other_workers(fleet) -> None:
    victim = fleet.start("victim", "--max-concurrent-tasks", "2")
    survivor = fleet.start("survivor", "--max-concurrent-tasks", "2")
    members = [f"job{n}" for n in range(8)]

    def build() -> None:
        group = sleeper(members[0], 1.5)
        for name in members[1:]:
            group = group | sleeper(name, 1.5)

    run = Run(build, config_for(fleet))
    wait_until(
        lambda: any(pid == victim.pid for _, pid in run.started()), 30, "a task to start on the victim"
    )
    victim.signal(signal.SIGKILL)
    victim.wait(10)
    on_victim = {name for name, pid in run.started() if pid == victim.pid}

    run.wait(120)
    results = {name: run.context.get_result(name) for name in members}
    assert all(pid == survivor.pid for name, pid in results.items() if name in on_victim)
    assert set(results.values()) <= {victim.pid, survivor.pid}
    assert on_victim  # the victim really held tasks when it died
    restarted = [name for name, pid in run.started() if name in on_victim and pid == survivor.pid]
    assert sorted(set(restarted)) == sorted(n for n in on_victim if results[n] == survivor.pid)


def test_sigterm_mid_task_finishes_the_task_and_exits_0(fleet) -> None:
    worker = fleet.start("draining", "--graceful-shutdown-timeout", "30")
    run = Run(lambda: sleeper("long", 2.0), config_for(fleet))
    wait_until(lambda: run.started(), 30, "the task to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert run.wait(30) == worker.pid  # finished where it started, not run again
    assert run.started() == [("long", worker.pid)]
    log = worker.log()
    assert '"event": "worker_stopped"' in log
    assert '"drained": true' in log
    assert "worker" not in [w["worker_id"] for w in fleet.queue().workers() if w["worker_id"] == "draining"]


def test_sigterm_hands_back_a_task_that_outlives_the_shutdown_timeout(fleet) -> None:
    first = fleet.start("impatient", "--graceful-shutdown-timeout", "0.5")
    run = Run(lambda: sleeper("long", 4.0), config_for(fleet))
    wait_until(lambda: run.started(), 30, "the task to start on the first worker")
    second = fleet.start("taker")
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0
    assert '"event": "task_released"' in first.log()
    assert run.wait(60) == second.pid
    assert [pid for _, pid in run.started()] == [first.pid, second.pid]


def test_redis_restart_mid_run_the_run_completes(fleet, private_redis) -> None:
    fleet.redis_url = private_redis.url
    workers = [fleet.start(f"w{n}", redis_url=private_redis.url) for n in range(2)]

    def build() -> None:
        group = sleeper("s0", 0.5)
        for n in range(1, 6):
            group = group | sleeper(f"s{n}", 0.5)

        @task(inject_context=True)
        def total(ctx: TaskExecutionContext) -> int:
            return sum(1 for n in range(6) if ctx.get_result(f"s{n}"))

        group >> total

    run = Run(build, config_for(fleet))
    wait_until(lambda: len(run.started()) >= 2, 30, "tasks to start")
    private_redis.stop()
    time.sleep(1.0)  # Redis stays down for a moment while tasks are running
    private_redis.start()
    assert run.wait(120) == 6
    assert all(w.process.poll() is None for w in workers), "a worker died with the Redis restart"


def test_garbage_and_tampered_entries_are_dead_lettered_and_reported(fleet) -> None:
    import pickle

    from graflow.remote.codec import dumps
    from graflow.remote.envelope import TaskEnvelope
    from graflow.remote.envelope import TaskOutcome as Outcome
    from graflow_redis.signing import MAGIC, Purpose, Slot

    key = "fleet-secret"
    fleet.start("strict", "--secret-key", key)
    queue = fleet.queue(secret_key=key)
    executor = queue.executor

    with workflow("payloads"):
        good = task("good")(lambda: "fine")
    payload = dumps(TaskEnvelope(good, session_id="s1", workflow_name="payloads"))
    sealed = queue.sealer.seal(Slot(Purpose.TASK, fleet.key_prefix, "s1", "some-uid"), payload)
    tampered = sealed[: len(MAGIC) + 32] + payload.replace(b"payloads", b"PAYLOADS")
    assert tampered != sealed

    outcomes: dict[str, Outcome] = {
        "garbage": executor.submit_payload("garbage", b"\x00not a pickle", seal=False).result(60),
        "tampered": executor.submit_payload("tampered", tampered, session_id="s1", seal=False).result(60),
        "unsigned": executor.submit_payload("unsigned", payload, seal=False).result(60),
        "good": executor.submit_payload("good", payload, session_id="s1").result(60),
    }
    queue.client.xadd(queue.keys.tasks, {"junk": "written by someone else"})

    assert outcomes["good"].success and outcomes["good"].result == "fine"
    for name in ("garbage", "tampered", "unsigned"):
        outcome = outcomes[name]
        assert not outcome.success
        assert outcome.error_type == "TaskRejectedError"
        assert f"task {name!r} was rejected by worker 'strict'" in outcome.error_message
        assert f"dead-letter stream '{{{fleet.key_prefix}}}:dead'" in outcome.error_message
    assert "is not signed (13 bytes that are not a Graflow seal)" in outcomes["garbage"].error_message
    assert "signature that does not match" in outcomes["tampered"].error_message
    assert "is not signed (an unsigned pickle)" in outcomes["unsigned"].error_message

    wait_until(lambda: len(queue.dead_letters()) == 4, 30, "four dead letters")
    letters = {d.get("task"): d for d in queue.dead_letters()}
    assert set(letters) == {"garbage", "tampered", "unsigned", "?"}
    assert "not written by a graflow driver" in letters["?"]["reason"]
    kept = letters["tampered"]["payload"][len(MAGIC) + 32 :]  # the dead letter keeps the entry's bytes
    assert pickle.loads(kept.replace(b"PAYLOADS", b"payloads")).task_id == "good"
    queue.close()


def test_a_driver_with_another_key_fails_the_task_instead_of_waiting(fleet) -> None:
    from graflow_redis.errors import OutcomeDecodeError

    fleet.start("keyed", "--secret-key", "the-workers-key")

    def build() -> None:
        task("signed_elsewhere")(lambda: 1)

    run = Run(build, config_for(fleet, secret_key="a-different-key"))
    # The worker rejects the task; its rejection, signed with the worker's key, cannot be
    # verified by this driver either: the run fails naming the key mismatch.
    with pytest.raises(OutcomeDecodeError) as raised:
        run.wait(60)
    assert "task 'signed_elsewhere': its outcome was refused" in str(raised.value)
    assert "has a signature that does not match the key of this process" in str(raised.value)
    assert "needs the same secret key" in str(raised.value)
    (letter,) = fleet.queue().dead_letters()
    assert letter["task"] == "signed_elsewhere"
    assert "signature that does not match" in letter["reason"]


def test_no_worker_alive_is_reported_at_once_and_fails_after_the_timeout(fleet, caplog) -> None:
    from graflow_redis.errors import NoWorkerAvailableError

    def warnings() -> list[str]:
        # Graflow logs through stdlib logging unless the application configured structlog.
        lines = [r.getMessage() for r in caplog.records] + [repr(e) for e in logs]
        return [line for line in lines if "no_worker_alive" in line]

    caplog.set_level(logging.WARNING, logger="graflow")
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        run = Run(lambda: task("lonely")(lambda: 1), config_for(fleet, worker_wait_timeout=3.0))
        wait_until(warnings, 10, "the driver's warning that no worker is alive")
        warned_after = time.monotonic() - started
        with pytest.raises(NoWorkerAvailableError) as raised:
            run.wait(60)
        failed_after = time.monotonic() - started
    assert warned_after < failed_after
    assert failed_after >= 3.0
    assert f"--key-prefix {fleet.key_prefix}" in warnings()[0]
    message = str(raised.value)
    assert (
        f"task 'lonely' was not run: no graflow-worker is alive for key prefix {fleet.key_prefix!r}"
        in message
    )
    assert "raise worker_wait_timeout" in message
    assert fleet.queue().depth() == 0  # the task was withdrawn: no worker runs it later
