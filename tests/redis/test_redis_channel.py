"""RedisChannel: the core channel contract (tests/core/channels/test_channels.py) plus what only Redis adds."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from graflow.channels.base import Channel
from graflow.exceptions import LockTimeoutError
from graflow.plugins.manager import get_plugin_manager
from graflow_redis.channel import RedisChannel
from tests.core.channels.test_channels import DEADLINE, ChannelContract
from tests.core.coordination import test_pool_executor as pool_executor_suite
from tests.support.waiting import wait_until


def redis_channel(config: dict[str, Any], session_id: str | None = None) -> Channel:
    """A channel built the way a run builds it: through the ``graflow_channel_backends`` hook."""
    factory = get_plugin_manager().resolve("graflow_channel_backends", "redis")
    return factory(session_id or f"run-{uuid.uuid4().hex}", config)


class TestPoolExecutorWithARedisChannel(pool_executor_suite.TestPoolExecutor):
    """The executor contract on a MULTIPROCESSING pool in a run whose channel is on Redis:
    pool processes reach the channel themselves, so writes go straight to it."""

    @pytest.fixture
    def shared_channel(self, config: dict[str, Any]) -> Iterator[Channel]:
        channel = redis_channel(config)
        yield channel
        channel.clear()


class TestRedisChannel(ChannelContract):
    """Every test of the memory channel, on Redis."""

    @pytest.fixture
    def channel(self, config: dict[str, Any]) -> Iterator[Channel]:
        channel = redis_channel(config)
        yield channel
        channel.clear()


# --- what a run gets --------------------------------------------------------------------


def test_the_redis_backend_builds_a_redis_channel_named_for_the_run(config: dict[str, Any]) -> None:
    channel = redis_channel(config, "run-42")
    assert isinstance(channel, RedisChannel)
    assert channel.name == "run-42"


def test_keys_live_under_the_key_prefix_and_the_run_id(
    config: dict[str, Any], key_prefix: str, redis_client: redis.Redis
) -> None:
    channel = redis_channel(config, "run-7")
    channel.set("config", {"a": 1})
    channel.append("log", "x")
    names = sorted(k.decode() for k in redis_client.scan_iter(match=f"{{{key_prefix}:*"))
    assert names == [
        f"{{{key_prefix}:ch:run-7}}:keys",
        f"{{{key_prefix}:ch:run-7}}:v:config",
        f"{{{key_prefix}:ch:run-7}}:v:log",
    ]


def test_two_runs_on_one_prefix_do_not_see_each_other(config: dict[str, Any]) -> None:
    first, second = redis_channel(config, "run-a"), redis_channel(config, "run-b")
    first.set("k", 1)
    assert second.get("k") is None
    assert second.keys() == []
    second.clear()
    assert first.get("k") == 1


def test_remote_spec_reconnects_another_process_to_the_same_channel(config: dict[str, Any]) -> None:
    channel = redis_channel(config, "run-shared")
    name, spec = channel.remote_spec()
    assert name == "redis"
    assert spec["key_prefix"] == config["key_prefix"]
    assert spec["redis_url"] == "redis://127.0.0.1:6379/0"

    import pickle

    elsewhere = redis_channel(pickle.loads(pickle.dumps(spec)), "run-shared")
    elsewhere.append("events", "from a worker")
    elsewhere.atomic_add("count", 2)
    channel.append("events", "from the driver")
    assert channel.get("events") == ["from a worker", "from the driver"]
    assert channel.get("count") == 2


def test_a_client_built_with_decode_responses_still_stores_any_value(redis_url: str, key_prefix: str) -> None:
    text_client = redis.Redis.from_url(redis_url, decode_responses=True)
    channel = redis_channel({"redis_client": text_client, "key_prefix": key_prefix})
    channel.set("blob", b"\x80\x00binary")
    channel.set("obj", {"x": {1, 2}})
    assert channel.get("blob") == b"\x80\x00binary"
    assert channel.get("obj") == {"x": {1, 2}}
    text_client.close()


# --- value types survive exactly -----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**63 - 1,
        2**80,
        1.0,
        -0.5,
        1e300,
        float("inf"),
        True,
        "12",
        "1.5",
        b"raw",
        None,
        [1, "a"],
        (1, 2),
    ],
    ids=repr,
)
def test_values_come_back_with_their_own_type(config: dict[str, Any], value: Any) -> None:
    channel = redis_channel(config)
    channel.set("k", value)
    back = channel.get("k")
    assert back == value
    assert type(back) is type(value)


def test_atomic_add_keeps_an_int_an_int_and_turns_it_float_with_a_float(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    assert channel.atomic_add("n", 2) == 2
    assert type(channel.get("n")) is int
    total = channel.atomic_add("n", 1.5)
    assert total == 3.5 and type(total) is float
    assert channel.atomic_add("whole", 1.5) == 1.5
    whole = channel.atomic_add("whole", 1.5)
    assert whole == 3.0 and type(whole) is float  # 3.0 stays a float, as in memory


def test_float_sums_are_bit_for_bit_what_python_computes(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    expected = 0.0
    for step in (0.1, 0.2, 1e-17, 3.3, -1 / 3):
        expected += step
        assert channel.atomic_add("x", step) == expected
    assert channel.get("x") == expected


def test_atomic_add_beyond_64_bits_is_exact(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    channel.set("big", 2**63 - 1)
    assert channel.atomic_add("big", 1) == 2**63
    assert channel.atomic_add("big", 2**70) == 2**63 + 2**70
    assert channel.get("big") == 2**63 + 2**70


@pytest.mark.parametrize("value", [True, [1], "3"], ids=repr)
def test_atomic_add_refuses_what_memory_refuses(config: dict[str, Any], value: Any) -> None:
    channel = redis_channel(config)
    if isinstance(value, list):
        channel.append("k", value[0])
    else:
        channel.set("k", value)
    with pytest.raises(TypeError, match="'k'.*not a number"):
        channel.atomic_add("k", 1)


def test_atomic_add_refuses_a_non_number_amount(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    with pytest.raises(TypeError, match="amount"):
        channel.atomic_add("k", "1")  # type: ignore[arg-type]
    assert not channel.exists("k")


# --- ttl is Redis's own expiry ---------------------------------------------------------------


def test_atomic_add_and_append_keep_a_keys_ttl(config: dict[str, Any], redis_client: redis.Redis) -> None:
    channel = redis_channel(config, "run-ttl")
    channel.set("n", 1, ttl=60)
    channel.atomic_add("n", 1.5)
    channel.set("l", [1], ttl=60)
    channel.append("l", 2)
    prefix = f"{{{config['key_prefix']}:ch:run-ttl}}:v:"
    assert 0 < redis_client.pttl(prefix + "n") <= 60_000
    assert 0 < redis_client.pttl(prefix + "l") <= 60_000
    assert channel.get("l") == [1, 2]


def test_keys_lists_in_the_order_keys_were_first_written(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    for key in ("c", "a", "b"):
        channel.set(key, 1)
    channel.set("a", 2)  # an overwrite keeps the position
    channel.delete("c")
    channel.append("c", 1)  # a key written again after deletion goes last
    assert channel.keys() == ["a", "b", "c"]


# --- locks across processes ------------------------------------------------------------------


def test_a_lock_is_exclusive_between_two_separate_clients(config: dict[str, Any]) -> None:
    """Two RedisChannel objects (as on two workers) contend for one lock."""
    first = redis_channel(config, "run-lock")
    second = redis_channel({**config, "redis_client": redis.Redis.from_url(config["redis_url"])}, "run-lock")
    with first.lock("job"):
        with pytest.raises(LockTimeoutError, match="'job'"):
            with second.lock("job", timeout=0.2):
                pytest.fail("two holders at once")
    with second.lock("job", timeout=1):
        pass


def test_a_lock_left_by_a_dead_holder_frees_itself_after_its_lease(config: dict[str, Any]) -> None:
    channel = redis_channel({**config, "lock_lease": 0.3}, "run-lease")
    assert isinstance(channel, RedisChannel)
    # What a process killed inside `with channel.lock("job")` leaves behind.
    channel.client.set(f"{{{config['key_prefix']}:ch:run-lease}}:lock:job", "dead-owner", px=300)
    with channel.lock("job", timeout=10):
        channel.set("ran", True)
    assert channel.get("ran") is True


def test_a_lock_held_longer_than_its_lease_is_renewed_not_lost(config: dict[str, Any]) -> None:
    holder = redis_channel({**config, "lock_lease": 1.0}, "run-renew")
    other = redis_channel({**config, "lock_lease": 1.0}, "run-renew")
    acquired_elsewhere = threading.Event()
    with holder.lock("job"):
        # Contend for three leases' time: renewal must keep the lock with its holder.
        try:
            with other.lock("job", timeout=3.0):
                acquired_elsewhere.set()
        except LockTimeoutError:
            pass
    assert not acquired_elsewhere.is_set()


def test_only_the_owner_token_releases_a_lock(config: dict[str, Any]) -> None:
    channel = redis_channel(config, "run-owner")
    assert isinstance(channel, RedisChannel)
    lock_key = f"{{{config['key_prefix']}:ch:run-owner}}:lock:job"
    with channel.lock("job"):
        released = channel._release(keys=[lock_key, lock_key + ":wake"], args=["someone-else", 1000])
        assert released == 0
        assert channel.client.exists(lock_key)
    assert not channel.client.exists(lock_key)


def test_waiting_for_a_lock_takes_it_as_soon_as_it_is_released(config: dict[str, Any]) -> None:
    channel = redis_channel(config)
    order: list[str] = []
    holding = threading.Event()
    go = threading.Event()

    def holder() -> None:
        with channel.lock("turn"):
            holding.set()
            go.wait(5)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(5)
    go.set()
    with channel.lock("turn", timeout=5):
        order.append("waiter in")
    thread.join(5)
    assert order == ["holder done", "waiter in"]
    wait_until(lambda: not channel.exists("turn"), DEADLINE, "the released lock's key to disappear")
