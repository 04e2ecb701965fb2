"""Redis Cluster (SPEC 21): drivers and workers on ``redis+cluster://``, every script on one slot.

The cluster is the test's own: three primaries with a replica each and a one-second
``cluster-node-timeout``; the workers are real ``graflow-worker`` processes given the
cluster's URL, as in production.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.cluster import RedisCluster
from redis.crc import key_slot

from graflow_redis.connection import client_from_config, shared_client, url_of
from graflow_redis.keys import Keys
from tests.redis_ha import squares
from tests.support.fleet import Fleet
from tests.support.redis_cluster import PrivateCluster


def test_a_parallel_group_runs_on_workers_of_a_redis_cluster(
    cluster: PrivateCluster, fleet_on: Callable[[str], Fleet]
) -> None:
    squares.runs_on_two_workers(fleet_on(cluster.url))


def test_a_run_keeps_its_queue_and_state_on_the_prefix_slot_and_its_channel_on_a_slot_of_its_own(
    cluster: PrivateCluster, fleet_on: Callable[[str], Fleet]
) -> None:
    fleet = fleet_on(cluster.url)
    fleet.start("w1")
    run = squares.start(fleet, seconds=0.0)
    assert run.wait(60) == squares.TOTAL

    client = shared_client(cluster.url)
    keys = Keys(fleet.key_prefix)
    channel_tag = keys.channel(run.context.session_id)
    names = [k.decode() for k in client.scan_iter(match=f"{{{fleet.key_prefix}*", count=1000)]
    slots = {name: key_slot(name.encode()) for name in names}

    run_keys = [n for n in names if n.startswith(f"{keys.base}:run:")]
    channel_keys = [n for n in names if n.startswith(channel_tag)]
    assert run_keys and channel_keys and any(n.startswith(f"{keys.base}:q:") for n in names)  # lanes
    assert {slots[n] for n in names if n.startswith(keys.base)} == {key_slot(keys.tasks.encode())}
    assert {slots[n] for n in channel_keys} == {key_slot(channel_tag.encode())}


def test_a_run_completes_with_every_result_when_the_primary_of_its_slot_is_killed_mid_run(
    cluster_to_break: PrivateCluster, fleet_on: Callable[[str], Fleet]
) -> None:
    fleet = fleet_on(cluster_to_break.url)
    primary = cluster_to_break.primary_of(Keys(fleet.key_prefix).tasks)  # the queue's, and every run state's
    replica = cluster_to_break.replica_of(primary)

    def crash() -> None:
        primary.kill()  # SIGKILL, with tasks running and more queued
        cluster_to_break.wait_promoted(replica, 30)

    replaced, finished = squares.survives(fleet, crash)

    print(
        f"cluster failover: replica promoted {replaced:.1f}s after the kill, run finished at {finished:.1f}s"
    )


def test_redis_cluster_true_makes_a_redis_url_name_one_node_of_the_cluster(cluster: PrivateCluster) -> None:
    node = cluster.nodes[0]
    client = client_from_config({"redis_url": f"redis://127.0.0.1:{node.port}/0", "redis_cluster": True})

    client.set("{graflow-test}:greeting", "hello")  # a plain client would be MOVED for most keys
    client.set("{other}:greeting", "hello")
    assert url_of(client).startswith("redis+cluster://127.0.0.1:")
    assert client.get("{other}:greeting") == b"hello"


def test_a_decoding_cluster_client_given_in_config_is_read_as_bytes_on_the_same_cluster(
    cluster: PrivateCluster,
) -> None:
    given = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port, decode_responses=True)
    given.set("{graflow-test}:greeting", "hello")

    used = client_from_config({"redis_client": given})

    assert used.get("{graflow-test}:greeting") == b"hello"
    assert url_of(used) == url_of(given)


def test_graflow_runs_and_worker_status_find_the_run_and_the_fleet_on_the_cluster(
    cluster: PrivateCluster, fleet_on: Callable[[str], Fleet]
) -> None:
    squares.seen_by_the_command_line(fleet_on(cluster.url))
