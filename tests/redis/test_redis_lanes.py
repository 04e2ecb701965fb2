"""Priority lanes (SPEC 19): a fetch takes the highest priority first, and lower lanes are never starved.

Entries are written to the lanes as a driver would (``XADD``) and taken with the
:data:`~graflow_redis.lanes.FETCH` script, as a worker does.
"""

from __future__ import annotations

import redis

from graflow.core.routing import Routing
from graflow_redis.lanes import FETCH, lane, lanes, route


def add(client: redis.Redis, prefix: str, queue: str, priority: int, name: str) -> None:
    client.xadd(lane(prefix, queue, priority), {"task": name})


def fetch(client: redis.Redis, prefix: str, queue: str, count: int, inverted: bool = False) -> list[str]:
    script = client.register_script(FETCH)
    flat = script(keys=lanes(prefix, queue), args=["graflow-workers", "w1", count, int(inverted)])
    names = []
    for index in range(0, len(flat), 3):
        fields = dict(zip(flat[index + 2][::2], flat[index + 2][1::2], strict=True))
        names.append(fields[b"task"].decode())
    return names


def test_a_fetch_takes_higher_priorities_first_and_no_more_than_asked(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    for priority, name in [(5, "normal-1"), (0, "low"), (9, "urgent"), (5, "normal-2"), (7, "high")]:
        add(redis_client, key_prefix, "default", priority, name)

    assert fetch(redis_client, key_prefix, "default", 3) == ["urgent", "high", "normal-1"]
    assert fetch(redis_client, key_prefix, "default", 3) == ["normal-2", "low"]
    assert fetch(redis_client, key_prefix, "default", 3) == []


def test_an_inverted_fetch_serves_the_lowest_waiting_lane_first(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    for priority, name in [(9, "urgent-1"), (9, "urgent-2"), (1, "backfill")]:
        add(redis_client, key_prefix, "default", priority, name)

    assert fetch(redis_client, key_prefix, "default", 1, inverted=True) == ["backfill"]
    assert fetch(redis_client, key_prefix, "default", 2) == ["urgent-1", "urgent-2"]


def test_queues_do_not_mix(redis_client: redis.Redis, key_prefix: str) -> None:
    add(redis_client, key_prefix, "gpu", 5, "render")
    add(redis_client, key_prefix, "default", 5, "email")

    assert fetch(redis_client, key_prefix, "gpu", 10) == ["render"]
    assert fetch(redis_client, key_prefix, "default", 10) == ["email"]


def test_a_lane_keeps_its_pending_entries_for_the_visibility_timeout(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    add(redis_client, key_prefix, "default", 3, "slow")
    fetch(redis_client, key_prefix, "default", 1)

    pending = redis_client.xpending(lane(key_prefix, "default", 3), "graflow-workers")
    assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"w1"


def test_the_lanes_of_a_queue_share_the_prefixs_cluster_slot() -> None:
    keys = lanes("graflow", "gpu")
    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert tags == {"graflow"} and len(keys) == 10 and keys[0] == "{graflow}:q:gpu:p9"


def test_a_task_without_routing_goes_to_the_default_queue_at_priority_5() -> None:
    assert route(None) == ("default", 5)
    assert route(Routing(queue="gpu")) == ("gpu", 5)
    assert route(Routing(priority=8)) == ("default", 8)
