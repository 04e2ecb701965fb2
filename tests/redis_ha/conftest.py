"""Fixtures for Redis beyond one server (SPEC 21): servers the test starts, and real workers on them.

* ``sentinels``: a primary, its replica and three sentinels on loopback ports 7100-7109,
  shared by a module's tests; ``sentinels_to_break``: a test's own (7110-7119).
* ``cluster``: a Redis Cluster of three primaries with a replica each, on ports 7120-7129,
  shared by a module's tests; ``cluster_to_break``: a test's own (7130-7139).
* ``fleet_on``: ``fleet_on(url)`` is a :class:`~tests.support.fleet.Fleet` of real
  ``graflow-worker`` processes for that URL, on a key prefix of the test's own; killed at
  teardown, their logs printed when the test failed.

Every server is killed at teardown with its folder; the shared Redis at 6379 is not used.
Without ``redis-server`` (and ``redis-cli`` for the cluster) the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.fleet import Fleet, stop_fleet
from tests.support.redis_cluster import PrivateCluster, start_cluster
from tests.support.redis_sentinel import SentinelSet, start_sentinel_set
from tests.support.reports import pytest_runtest_makereport  # noqa: F401 (a hook)


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """Shared by the module's tests that break nothing (each works under a key prefix of its own)."""
    with start_sentinel_set(tmp_path_factory.mktemp("sentinel"), ports=range(7100, 7110)) as servers:
        yield servers


@pytest.fixture
def sentinels_to_break(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A test's own, to kill a server of."""
    with start_sentinel_set(tmp_path_factory.mktemp("sentinel"), ports=range(7110, 7120)) as servers:
        yield servers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    """Shared by the module's tests that break nothing (each works under a key prefix of its own)."""
    with start_cluster(tmp_path_factory.mktemp("cluster"), ports=range(7120, 7130)) as nodes:
        yield nodes


@pytest.fixture
def cluster_to_break(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    """A test's own, to kill a node of."""
    with start_cluster(tmp_path_factory.mktemp("cluster"), ports=range(7130, 7140)) as nodes:
        yield nodes


@pytest.fixture
def fleet_on(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Fleet]]:
    fleets: list[Fleet] = []

    def make(url: str) -> Fleet:
        fleet = Fleet(url, f"ha-{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("fleet"))
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        stop_fleet(fleet, request)
