"""Redis Sentinel (SPEC 21): workers and drivers reach the primary through ``redis+sentinel://``.

The servers are the test's own (a primary, a replica, three sentinels with a one-second
``down-after-milliseconds``); the workers are real ``graflow-worker`` processes given the
Sentinel URL, as in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.sentinel import Sentinel

from graflow_redis.connection import client_from_config, shared_client, url_of
from graflow_redis.trust import is_loopback
from tests.redis_ha import squares
from tests.support.fleet import Fleet
from tests.support.redis_sentinel import SERVICE, SentinelSet
from tests.support.waiting import wait_until


def test_a_parallel_group_runs_on_workers_that_found_the_primary_through_sentinel(
    sentinels: SentinelSet, fleet_on: Callable[[str], Fleet]
) -> None:
    fleet = fleet_on(sentinels.url)
    fleet.start("w1")
    fleet.start("w2")

    run = squares.start(fleet, seconds=0.1)

    assert run.wait(60) == squares.TOTAL
    assert squares.results(run) == {f"square{n}": n * n for n in range(squares.MEMBERS)}


def test_a_run_completes_with_every_result_when_the_primary_is_killed_mid_run(
    sentinels: SentinelSet, fleet_on: Callable[[str], Fleet]
) -> None:
    fleet = fleet_on(sentinels.url)
    workers = [fleet.start("w1"), fleet.start("w2")]
    run = squares.start(fleet, seconds=1.0)
    wait_until(lambda: len(run.started()) >= 2, 30, "two squares to start")

    killed_at = time.monotonic()
    sentinels.primary.kill()  # SIGKILL: a crash, with tasks running and more queued
    assert sentinels.wait_failover(30) == sentinels.replica.port
    failover = time.monotonic() - killed_at

    assert run.wait(120) == squares.TOTAL
    finished = time.monotonic() - killed_at
    assert squares.results(run) == {f"square{n}": n * n for n in range(squares.MEMBERS)}
    assert {name for name, _ in run.started()} == set(squares.results(run))
    assert all(w.process.poll() is None for w in workers), "a worker died with the primary"
    print(f"sentinel failover: promoted after {failover:.1f}s, run finished {finished:.1f}s after the kill")


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
