"""Redis Sentinel (SPEC 21): workers and drivers reach the primary through ``redis+sentinel://``.

The servers are the test's own (a primary, a replica, three sentinels with a one-second
``down-after-milliseconds``); the workers are real ``graflow-worker`` processes given the
Sentinel URL, as in production.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.sentinel import Sentinel

from graflow_redis.connection import client_from_config, shared_client, url_of
from graflow_redis.trust import is_loopback
from tests.redis_ha import squares
from tests.support.fleet import Fleet
from tests.support.redis_sentinel import SERVICE, SentinelSet


def test_a_parallel_group_runs_on_workers_that_found_the_primary_through_sentinel(
    sentinels: SentinelSet, fleet_on: Callable[[str], Fleet]
) -> None:
    squares.runs_on_two_workers(fleet_on(sentinels.url))


def test_a_run_completes_with_every_result_when_the_primary_is_killed_mid_run(
    sentinels_to_break: SentinelSet, fleet_on: Callable[[str], Fleet]
) -> None:
    def crash() -> None:
        sentinels_to_break.primary.kill()  # SIGKILL, with tasks running and more queued
        assert sentinels_to_break.wait_failover(30) == sentinels_to_break.replica.port

    replaced, finished = squares.survives(fleet_on(sentinels_to_break.url), crash)

    print(
        f"sentinel failover: replica promoted {replaced:.1f}s after the kill, run finished at {finished:.1f}s"
    )


def test_a_sentinel_client_hands_its_sentinel_url_on_and_counts_as_loopback_when_all_is_local(
    sentinels: SentinelSet,
) -> None:
    client = shared_client(sentinels.url)

    assert url_of(client) == sentinels.url  # what workers and resumed runs connect with
    assert client_from_config({"redis_url": sentinels.url}) is client
    assert is_loopback(client)


def test_a_decoding_sentinel_client_given_in_config_is_read_as_bytes_on_the_same_primary(
    sentinels: SentinelSet,
) -> None:
    hosts = [("127.0.0.1", port) for port in sentinels.sentinel_ports]
    given = Sentinel(hosts).master_for(SERVICE, decode_responses=True)
    given.set("greeting", "hello")

    used = client_from_config({"redis_client": given})

    assert used.get("greeting") == b"hello"
    assert url_of(used) == sentinels.url


def test_a_sentinel_client_is_not_loopback_when_a_sentinel_is_elsewhere() -> None:
    # Decided from the sentinels' addresses alone: nothing is asked of a sentinel that is elsewhere.
    client = Sentinel([("127.0.0.1", 26379), ("192.0.2.1", 26379)]).master_for(SERVICE)

    assert not is_loopback(client)


def test_graflow_runs_and_worker_status_find_the_run_and_the_fleet_through_sentinel(
    sentinels: SentinelSet, fleet_on: Callable[[str], Fleet]
) -> None:
    squares.seen_by_the_command_line(fleet_on(sentinels.url))
