"""overlays/keda autoscales each fleet on the whole depth of the queue it serves.

A queue is ten Redis streams, one per priority lane (graflow_redis.lanes, which names them);
KEDA's redis-streams scaler reads one stream per trigger. So each fleet's ScaledObject must
list exactly the lanes of the queues that fleet serves, under its key prefix, on the Redis
its workers use, and add them up.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from graflow.core.routing import DEFAULT_QUEUE
from graflow_redis.lanes import lanes
from graflow_worker.options import redis_url
from tests.deploy.conftest import Rendered
from tests.deploy.fleet import environment, served_queues, settings, trigger_server, worker_container
from tests.deploy.keda_schema import REDIS_STREAMS_PARAMETERS


@pytest.fixture
def keda(rendered: dict[str, Rendered]) -> Rendered:
    return rendered["overlays/keda"]


def _scaled_object_of(out: Rendered, deployment: dict[str, Any]) -> dict[str, Any]:
    (scaled,) = [
        s
        for s in out.of_kind("ScaledObject")
        if s["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]
    return scaled


def test_one_scaled_object_per_fleet_and_so_per_queue(keda: Rendered) -> None:
    targets = sorted(s["spec"]["scaleTargetRef"]["name"] for s in keda.of_kind("ScaledObject"))
    assert targets == sorted(d["metadata"]["name"] for d in keda.workers)
    for scaled in keda.of_kind("ScaledObject"):
        assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    queues = [q for d in keda.workers for q in served_queues(worker_container(d), {})]
    assert sorted(queues) == [DEFAULT_QUEUE, "gpu"]
    assert len(set(queues)) == len(queues)  # no queue is scaled by two fleets


def test_triggers_read_every_lane_of_the_fleets_queues(keda: Rendered) -> None:
    for deployment in keda.workers:
        container = worker_container(deployment)
        worker = settings(keda, deployment)
        queues = served_queues(container, environment(keda, container))
        triggers = _scaled_object_of(keda, deployment)["spec"]["triggers"]
        streams = [t["metadata"]["stream"] for t in triggers]
        expected = [stream for q in queues for stream in lanes(worker.key_prefix, q)]
        assert sorted(streams) == sorted(expected)


def test_triggers_measure_stream_length_on_the_workers_redis(keda: Rendered) -> None:
    for deployment in keda.workers:
        container = worker_container(deployment)
        # KEDA reads the *FromEnv variables from the target's first container.
        assert deployment["spec"]["template"]["spec"]["containers"][0]["name"] == container["name"]
        env = environment(keda, container)
        redis = urlsplit(redis_url(settings(keda, deployment)))
        for trigger in _scaled_object_of(keda, deployment)["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "redis-streams"
            assert set(meta) <= REDIS_STREAMS_PARAMETERS, set(meta) - REDIS_STREAMS_PARAMETERS
            assert trigger_server(meta, env) == (redis.hostname, redis.port or 6379)
            assert int(meta.get("databaseIndex", "0")) == int(redis.path.strip("/") or 0)
            # The length: waiting + running (completed entries are deleted). With a consumer
            # group the scaler would count pending entries instead; lag is undefined here.
            assert "streamLength" in meta
            assert not {"consumerGroup", "pendingEntriesCount", "lagCount"} & set(meta)


def test_the_fleet_is_sized_on_the_sum_of_its_lanes(keda: Rendered) -> None:
    """Several triggers alone would scale on the busiest lane: the formula adds them all."""
    for deployment in keda.workers:
        spec = _scaled_object_of(keda, deployment)["spec"]
        names = [t["name"] for t in spec["triggers"]]
        assert len(set(names)) == len(names)
        modifiers = spec["advanced"]["scalingModifiers"]
        terms = [term.strip() for term in modifiers["formula"].split("+")]
        assert sorted(terms) == sorted(names)
        assert all(term.isidentifier() for term in terms)
        # As many pods as it takes to run everything queued at once.
        assert float(modifiers["target"]) == settings(keda, deployment).max_concurrent_tasks


def test_every_queue_keeps_a_live_worker(keda: Rendered) -> None:
    """A driver fails tasks waiting longer than worker_wait_timeout (60 s) with no worker."""
    for scaled in keda.of_kind("ScaledObject"):
        spec = scaled["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
