"""The channel contract (SPEC section 6), as one suite every channel backend must pass.

:class:`ChannelContract` holds the tests; a backend runs them by subclassing it and
providing a ``channel`` fixture (see :class:`TestMemoryChannel`). Channels are built
through the ``graflow_channel_backends`` hook, exactly as a run builds them, so a Redis
suite is::

    class TestRedisChannel(ChannelContract):
        @pytest.fixture
        def channel(self, redis_url):
            channel = make_channel("redis", {"redis_url": redis_url})
            yield channel
            channel.clear()

Timing-dependent behaviour (``ttl``) is observed by polling against a deadline, never
by sleeping a fixed time and asserting.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from graflow.channels.base import Channel
from graflow.channels.memory import MemoryChannel
from graflow.exceptions import GraflowError, LockTimeoutError
from graflow.plugins.manager import get_plugin_manager
from tests.support.waiting import wait_until

#: Upper bound for anything that should happen "soon" (expiry); generous for slow CI.
DEADLINE = 5.0
THREADS = 8


def make_channel(backend: str, config: Mapping[str, Any] | None = None) -> Channel:
    """A fresh channel of ``backend``, built the way ``ExecutionContext.create`` builds one."""
    factory = get_plugin_manager().resolve("graflow_channel_backends", backend)
    return factory(f"test-{uuid.uuid4().hex}", dict(config or {}))


def run_threads(target: Callable[[int], None], count: int = THREADS) -> None:
    """Start ``count`` threads on ``target(i)`` at once (behind a barrier) and join them."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # surfaced below, so a failing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert errors == []


class ChannelContract:
    """What every channel backend does. Subclasses provide the ``channel`` fixture."""

    # --- set / get ---------------------------------------------------------------------

    def test_get_returns_what_set_stored(self, channel: Channel) -> None:
        value = {"batch_size": 100, "tags": ["a", "b"], "ratio": 0.5, "nested": {"ok": True}}
        channel.set("config", value)
        assert channel.get("config") == value

    def test_set_overwrites_the_previous_value(self, channel: Channel) -> None:
        channel.set("progress", 10)
        channel.set("progress", 20)
        assert channel.get("progress") == 20

    def test_get_of_a_missing_key_returns_none_or_the_default(self, channel: Channel) -> None:
        assert channel.get("missing") is None
        assert channel.get("missing", default={}) == {}
        assert channel.get("missing", 0) == 0

    def test_a_stored_none_is_returned_rather_than_the_default(self, channel: Channel) -> None:
        channel.set("nothing", None)
        assert channel.exists("nothing")
        assert channel.get("nothing", default="fallback") is None

    # --- ttl ---------------------------------------------------------------------------

    def test_a_key_with_ttl_disappears_after_it(self, channel: Channel) -> None:
        channel.set("session", "token", ttl=0.05)
        assert channel.get("session") == "token"

        wait_until(lambda: not channel.exists("session"), DEADLINE, "'session' to expire")
        assert channel.get("session", default="gone") == "gone"
        assert "session" not in channel.keys()

    def test_setting_a_key_again_without_ttl_makes_it_permanent(self, channel: Channel) -> None:
        channel.set("kept", 1, ttl=0.05)
        channel.set("witness", 1, ttl=0.05)
        channel.set("kept", 2)

        wait_until(lambda: not channel.exists("witness"), DEADLINE, "the old ttl to pass")
        assert channel.get("kept") == 2

    def test_keys_without_ttl_are_untouched_by_expiry(self, channel: Channel) -> None:
        channel.set("short", 1, ttl=0.05)
        channel.set("long", 2)
        wait_until(lambda: not channel.exists("short"), DEADLINE, "'short' to expire")
        assert channel.keys() == ["long"]

    def test_a_non_positive_ttl_is_refused(self, channel: Channel) -> None:
        with pytest.raises(ValueError, match="ttl"):
            channel.set("k", 1, ttl=0)
        assert not channel.exists("k")

    # --- delete / exists / keys / clear ------------------------------------------------------

    def test_delete_removes_a_key_and_says_whether_it_existed(self, channel: Channel) -> None:
        channel.set("k", 1)
        assert channel.delete("k") is True
        assert not channel.exists("k")
        assert channel.get("k") is None
        assert channel.delete("k") is False

    def test_exists_and_in_tell_whether_a_key_holds_a_value(self, channel: Channel) -> None:
        assert not channel.exists("k")
        assert "k" not in channel
        channel.set("k", 0)
        assert channel.exists("k")
        assert "k" in channel

    def test_keys_lists_every_live_key(self, channel: Channel) -> None:
        assert channel.keys() == []
        for key in ("config", "metrics", "progress"):
            channel.set(key, key.upper())
        assert sorted(channel.keys()) == ["config", "metrics", "progress"]
        assert sorted(channel) == ["config", "metrics", "progress"]

    def test_clear_removes_every_key(self, channel: Channel) -> None:
        channel.set("a", 1)
        channel.set("b", 2, ttl=60)
        channel.append("c", 3)
        channel.clear()
        assert channel.keys() == []
        assert channel.get("a") is None
        assert not channel.exists("c")

    # --- append / prepend ------------------------------------------------------------------

    def test_append_creates_the_list_and_returns_its_new_length(self, channel: Channel) -> None:
        assert channel.append("log", "first") == 1
        assert channel.append("log", "second") == 2
        assert channel.get("log") == ["first", "second"]

    def test_prepend_inserts_at_the_front_and_returns_the_new_length(self, channel: Channel) -> None:
        assert channel.prepend("stack", "b") == 1
        assert channel.prepend("stack", "a") == 2
        assert channel.append("stack", "c") == 3
        assert channel.get("stack") == ["a", "b", "c"]

    def test_append_extends_a_list_stored_with_set(self, channel: Channel) -> None:
        channel.set("items", [1, 2])
        assert channel.append("items", 3) == 3
        assert channel.get("items") == [1, 2, 3]

    @pytest.mark.parametrize("operation", ["append", "prepend"])
    def test_append_and_prepend_refuse_a_key_that_is_not_a_list(
        self, channel: Channel, operation: str
    ) -> None:
        channel.set("counter", 5)
        with pytest.raises(TypeError, match="'counter'.*not a list"):
            getattr(channel, operation)("counter", 1)
        assert channel.get("counter") == 5

    def test_concurrent_appends_lose_nothing(self, channel: Channel) -> None:
        per_thread = 200

        def appender(i: int) -> None:
            for n in range(per_thread):
                channel.append("events", (i, n))

        run_threads(appender)

        events = channel.get("events")
        assert len(events) == THREADS * per_thread
        assert sorted(map(tuple, events)) == [(i, n) for i in range(THREADS) for n in range(per_thread)]

    # --- atomic_add ----------------------------------------------------------------------------

    def test_atomic_add_starts_a_missing_key_at_zero_and_returns_the_sum(self, channel: Channel) -> None:
        assert channel.atomic_add("count") == 1
        assert channel.atomic_add("count", 5) == 6
        assert channel.atomic_add("count", -2) == 4
        assert channel.get("count") == 4

    def test_atomic_add_works_with_floats(self, channel: Channel) -> None:
        assert channel.atomic_add("total", 1.5) == pytest.approx(1.5)
        assert channel.atomic_add("total", 0.25) == pytest.approx(1.75)
        assert channel.get("total") == pytest.approx(1.75)

    def test_atomic_add_refuses_a_key_that_is_not_a_number(self, channel: Channel) -> None:
        channel.set("name", "ada")
        with pytest.raises(TypeError, match="'name'.*not a number"):
            channel.atomic_add("name", 1)
        assert channel.get("name") == "ada"

    def test_concurrent_atomic_adds_sum_exactly(self, channel: Channel) -> None:
        per_thread = 500

        def adder(i: int) -> None:
            for _ in range(per_thread):
                channel.atomic_add("hits", 1)

        run_threads(adder)
        assert channel.get("hits") == THREADS * per_thread

    # --- lock ----------------------------------------------------------------------------------

    def test_lock_makes_read_modify_write_sequences_mutually_exclusive(self, channel: Channel) -> None:
        per_thread = 100
        inside = [0]
        most_inside = [0]
        channel.set("balance", 0)

        def depositor(i: int) -> None:
            for _ in range(per_thread):
                with channel.lock("balance", timeout=30):
                    inside[0] += 1
                    most_inside[0] = max(most_inside[0], inside[0])
                    balance = channel.get("balance")
                    time.sleep(0)  # invite a thread switch between the read and the write
                    channel.set("balance", balance + 1)
                    inside[0] -= 1

        run_threads(depositor)

        assert channel.get("balance") == THREADS * per_thread
        assert most_inside[0] == 1

    def test_lock_times_out_with_lock_timeout_error_while_another_holder_keeps_it(
        self, channel: Channel
    ) -> None:
        held = threading.Event()
        release = threading.Event()

        def holder() -> None:
            with channel.lock("resource"):
                held.set()
                release.wait(DEADLINE)

        thread = threading.Thread(target=holder)
        thread.start()
        try:
            assert held.wait(DEADLINE)
            with pytest.raises(LockTimeoutError) as info:
                with channel.lock("resource", timeout=0.05):
                    pytest.fail("the lock was granted while another thread held it")
        finally:
            release.set()
            thread.join(DEADLINE)

        assert isinstance(info.value, GraflowError)
        assert isinstance(info.value, TimeoutError)
        message = str(info.value)
        assert "'resource'" in message
        assert "timeout=" in message
        with channel.lock("resource", timeout=DEADLINE):  # free again once released
            pass

    def test_locks_with_different_keys_do_not_block_each_other(self, channel: Channel) -> None:
        with channel.lock("a"):
            with channel.lock("b", timeout=0.5):
                channel.set("both", True)
        assert channel.get("both") is True

    def test_lock_is_released_when_the_block_raises(self, channel: Channel) -> None:
        with pytest.raises(KeyError):
            with channel.lock("k"):
                raise KeyError("boom")
        with channel.lock("k", timeout=0.5):
            channel.set("after", 1)
        assert channel.get("after") == 1

    # --- snapshot ------------------------------------------------------------------------------

    def test_snapshot_copies_every_live_key(self, channel: Channel) -> None:
        channel.set("a", 1)
        channel.append("b", "x")
        assert channel.snapshot() == {"a": 1, "b": ["x"]}


class TestMemoryChannel(ChannelContract):
    @pytest.fixture
    def channel(self) -> Iterator[Channel]:
        channel = make_channel("memory")
        yield channel
        channel.clear()

    def test_the_memory_backend_builds_a_memory_channel_named_for_the_run(self) -> None:
        channel = get_plugin_manager().resolve("graflow_channel_backends", "memory")("run-42", {})
        assert isinstance(channel, MemoryChannel)
        assert channel.name == "run-42"

    def test_a_run_channel_never_lists_task_results(self) -> None:
        from graflow.core.decorators import task
        from graflow.core.workflow import workflow

        with workflow("results_not_in_channel") as wf:

            @task
            def produce() -> int:
                return 7

            result, ctx = wf.execute(ret_context=True, initial_channel={"seed": 1})

        assert result == 7
        assert ctx.get_channel() is ctx.channel
        assert ctx.channel.keys() == ["seed"]
