"""``DistributedTaskQueue``: the Redis queue backend, one object for drivers, workers and status.

It reads the settings (``key_prefix``, ``visibility_timeout``, ``secret_key``, ...) once,
refuses a Redis that is not on loopback without a secret key (see :mod:`graflow_redis.trust`),
and composes the three sides that share them:

* :attr:`~DistributedTaskQueue.executor`, a :class:`~graflow_redis.driver.FleetExecutor`:
  the driver's side, where a Redis run's tasks execute (put on their lane ``{PREFIX}:q:QUEUE:pN``,
  outcome awaited);
* :attr:`~DistributedTaskQueue.consumer`, a :class:`~graflow_redis.stream_consumer.StreamConsumer`:
  the worker's side (fetch, complete, keep alive, release, dead letters);
* :attr:`~DistributedTaskQueue.fleet`, a :class:`~graflow_redis.fleet.FleetView`:
  heartbeats, the live fleet, queue depth, dead letters.

Its worker-side and fleet methods pass straight on to those parts, so the queue itself is
a :class:`~graflow_redis.consumer.Consumer`: ``TaskWorker(DistributedTaskQueue(...))``.
As a queue backend it only says where a run's tasks execute (:attr:`executor`) and
releases that on :meth:`close`; the engine keeps its ready tasks itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Final

import redis

from graflow import settings
from graflow.core.routing import DEFAULT_QUEUE, check_queue
from graflow.exceptions import ConfigError
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis.connection import client_from_config, describe
from graflow_redis.consumer import Delivery
from graflow_redis.driver import FleetExecutor
from graflow_redis.fleet import FleetView
from graflow_redis.keys import Keys
from graflow_redis.limits import RedisLimits
from graflow_redis.signing import KeySpec, Sealer
from graflow_redis.stream_consumer import StreamConsumer
from graflow_redis.trust import allows_unsigned, sealer_for

__all__ = ["Delivery", "DistributedTaskQueue", "parse_queues"]

#: Config keys the queue reads (besides ``redis_client`` / ``redis_url``); others are ignored.
OPTIONS: Final = (
    "redis_cluster",
    "key_prefix",
    "visibility_timeout",
    "secret_key",
    "allow_unsigned",
    "worker_wait_timeout",
    "heartbeat_ttl",
    "max_deliveries",
    "done_ttl",
    "connection_retry_timeout",
    "queues",
)


def parse_queues(queues: str | Sequence[str]) -> list[str]:
    """``"gpu, default"`` or ``["gpu", "default"]`` as a list of checked queue names, in order."""
    names = queues.split(",") if isinstance(queues, str) else list(queues)
    checked = [check_queue(name.strip() if isinstance(name, str) else name, "queues") for name in names]
    if not checked:
        raise ConfigError("queues: name at least one queue to serve (e.g. queues='default,gpu')")
    return list(dict.fromkeys(checked))


class DistributedTaskQueue:
    """The Redis queue backend (``queue_backend="redis"``), for drivers and workers alike.

    ``TaskWorker(queue=DistributedTaskQueue(redis_client=redis.Redis(), key_prefix="graflow"))``
    on a worker; ``ExecutionContext.create(..., queue_backend=QueueBackend.REDIS, config=...)``
    builds one on the driver. Drivers and workers agree on ``key_prefix`` and, unless
    unsigned, on the secret key (``secret_key``: a key, ``"new,old"`` or a list; the first signs).
    """

    def __init__(
        self,
        redis_client: redis.Redis | None = None,
        *,
        redis_url: str | None = None,
        redis_cluster: bool = False,
        key_prefix: str | None = None,
        visibility_timeout: float = 30.0,
        secret_key: KeySpec | Sealer | None = None,
        allow_unsigned: bool | None = None,
        worker_wait_timeout: float = 60.0,
        heartbeat_ttl: float = 10.0,
        max_deliveries: int = 10,
        done_ttl: float = 3600.0,
        connection_retry_timeout: float = 60.0,
        queues: str | Sequence[str] = (DEFAULT_QUEUE,),
        **options: Any,
    ) -> None:
        key_prefix = settings.key_prefix({"key_prefix": key_prefix})
        max_deliveries = settings.whole("max_deliveries", max_deliveries)
        config: dict[str, Any] = {
            "redis_client": redis_client,
            "redis_url": redis_url,
            "redis_cluster": redis_cluster,
        }
        #: The client every operation uses (bytes responses).
        self.client = client_from_config(config)
        self.key_prefix = key_prefix
        self.keys = Keys(key_prefix)
        #: Seconds a delivered entry may stay silent before another worker takes it.
        self.visibility_timeout = settings.seconds("visibility_timeout", visibility_timeout)
        #: Seconds a driver waits while no worker is alive before failing the task.
        self.worker_wait_timeout = settings.seconds("worker_wait_timeout", worker_wait_timeout)
        #: Seconds a worker's heartbeat counts as alive.
        self.heartbeat_ttl = settings.seconds("heartbeat_ttl", heartbeat_ttl)
        self.max_deliveries = max_deliveries
        self.done_ttl = int(settings.seconds("done_ttl", done_ttl))
        self.connection_retry_timeout = settings.seconds("connection_retry_timeout", connection_retry_timeout)
        #: The queues a worker on this queue serves (a driver submits to whatever its tasks name).
        self.queues = parse_queues(queues)
        #: Where Redis is, for messages (no credentials).
        self.where = describe(self.client)
        #: Seals what this process writes and verifies what it reads (``None``: unsigned).
        self.sealer = sealer_for(self.client, secret_key, allow_unsigned, key_prefix=key_prefix)
        self.options = dict(options)
        #: The fleet as Redis sees it: heartbeats, depth, dead letters.
        self.fleet = FleetView(self.client, self.keys, self.heartbeat_ttl)
        #: The worker's side: what a ``TaskWorker`` on this queue fetches and completes through.
        self.consumer = StreamConsumer(
            self.client,
            self.keys,
            fleet=self.fleet,
            sealer=self.sealer,
            allow_unsigned=allows_unsigned(allow_unsigned),
            visibility_timeout=self.visibility_timeout,
            max_deliveries=self.max_deliveries,
            done_ttl=self.done_ttl,
            queues=self.queues,
        )
        #: Rate and concurrency limits, counted in Redis for the whole fleet: workers take a
        #: place before a limited task starts and hold it while it runs (as long as an entry).
        self.limits = RedisLimits(self.client, key_prefix, hold=self.visibility_timeout)
        #: Where the run's tasks execute: the worker fleet. Starts no thread until a task is submitted.
        self.executor: FleetExecutor = FleetExecutor(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DistributedTaskQueue:
        """Build from a run's ``config`` (what ``ExecutionContext.create`` passes)."""
        return cls(
            config.get("redis_client"),
            redis_url=config.get("redis_url"),
            **{key: config[key] for key in OPTIONS if key in config},
        )

    # --- driver side -----------------------------------------------------------------------

    def submit(self, envelope: TaskEnvelope) -> Future[TaskOutcome]:
        """Put one task on the stream; the future resolves to its outcome."""
        return self.executor.submit(envelope)

    def close(self) -> None:
        """Stop waiting for outcomes and withdraw tasks no worker has finished (driver side).

        The queue stays usable: a later run on it gets a fresh executor.
        """
        executor, self.executor = self.executor, FleetExecutor(self)
        executor.close()

    # --- worker side: see StreamConsumer --------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist (idempotent)."""
        self.consumer.ensure_group()

    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[Delivery]:
        """Up to ``count`` entries for worker ``consumer`` (:meth:`StreamConsumer.fetch`)."""
        return self.consumer.fetch(consumer, count, block)

    def complete(self, delivery: Delivery, outcome: TaskOutcome) -> bool:
        """Record ``outcome`` once and acknowledge the entry (:meth:`StreamConsumer.complete`)."""
        return self.consumer.complete(delivery, outcome)

    def complete_many(self, items: Sequence[tuple[Delivery, TaskOutcome]]) -> list[bool]:
        """:meth:`complete` for several deliveries in one round trip."""
        return self.consumer.complete_many(items)

    def complete_and_take(
        self, items: Sequence[tuple[Delivery, TaskOutcome]], consumer: str, count: int
    ) -> tuple[list[bool], list[Delivery]]:
        """Complete a batch and take up to ``count`` new entries in one round trip
        (:meth:`StreamConsumer.complete_and_take`)."""
        return self.consumer.complete_and_take(items, consumer, count)

    def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Keep running entries with their worker (:meth:`StreamConsumer.keep_alive`)."""
        self.consumer.keep_alive(deliveries)

    def release(self, delivery: Delivery) -> None:
        """Hand an unfinished entry back to the next fetch (:meth:`StreamConsumer.release`)."""
        self.consumer.release(delivery)

    # --- the fleet: see FleetView ---------------------------------------------------------------

    def heartbeat(self, worker_id: str, info: Mapping[str, Any]) -> None:
        """Publish that ``worker_id`` is alive, with what it runs and its counters."""
        self.fleet.heartbeat(worker_id, info)

    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker at once (a clean shutdown)."""
        self.fleet.remove_worker(worker_id)

    def workers(self) -> list[dict[str, Any]]:
        """The live fleet: the last heartbeat of every worker still alive."""
        return self.fleet.workers()

    def depth(self) -> int:
        """Entries waiting for a worker, over every queue (not yet delivered)."""
        return self.fleet.depth()

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Per queue: entries ``waiting`` for a worker and ``running`` on one."""
        return self.fleet.queue_depths()

    def in_flight(self) -> int:
        """Entries delivered to a worker and not yet completed."""
        return self.fleet.in_flight()

    def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters first (:meth:`FleetView.dead_letters`)."""
        return self.fleet.dead_letters(count)

    def __repr__(self) -> str:
        return f"<DistributedTaskQueue {self.where} prefix={self.key_prefix!r} queues={self.queues!r}>"
