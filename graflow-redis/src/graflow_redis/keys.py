"""Every Redis key graflow-redis uses, in one place: all start with the key prefix in braces.

Drivers and workers agree on nothing but the key prefix, so the layout below *is* the
wire protocol between them (together with :mod:`graflow_redis.entry`).

The braces are a Redis Cluster hash tag. A worker records an outcome, acknowledges its
entry and records the run's step in one script (:data:`~graflow_redis.scripts.FINISH`), so
the queues' lanes, the dead letters, the done markers, the reply lists, the fleet and every
run's state must share one slot: they are named ``{PREFIX}:...``. What no script joins to
them is tagged apart so a cluster spreads it: a run's channel (``{PREFIX:ch:RUN}:...``, one
slot per run) and each limit (``{PREFIX:limit:KEY}``, :mod:`graflow_redis.limits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from graflow.core.routing import DEFAULT_PRIORITY, DEFAULT_QUEUE
from graflow.exceptions import ConfigError
from graflow_redis import lanes

__all__ = ["GROUP", "RUN_KEYS_TTL", "Keys", "RunKeys"]

#: The consumer group every worker of a key prefix reads the task stream through.
GROUP: Final = "graflow-workers"
#: Seconds a run's keys outlive their last write while it runs; a finished run's keys get
#: the run's ``run_ttl`` instead, so an abandoned run expires on its own.
RUN_KEYS_TTL: Final = 8 * 24 * 3600


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (which must not hold braces: they would change its hash tag)."""

    prefix: str

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigError(
                f"key prefix {self.prefix!r} holds a brace; Graflow wraps the prefix in braces itself "
                "(a Redis Cluster hash tag), so choose one without '{' or '}'"
            )

    @property
    def base(self) -> str:
        """``{PREFIX}``: how every key of the prefix's own slot starts."""
        return f"{{{self.prefix}}}"

    def lane(self, queue: str, priority: int) -> str:
        """Stream of the task entries of ``queue`` at ``priority`` (see :mod:`graflow_redis.lanes`)."""
        return lanes.lane(self.prefix, queue, priority)

    def lanes(self, queue: str) -> list[str]:
        """A queue's lanes, highest priority first."""
        return lanes.lanes(self.prefix, queue)

    @property
    def tasks(self) -> str:
        """The lane of a task with no routing: the default queue at the default priority."""
        return self.lane(DEFAULT_QUEUE, DEFAULT_PRIORITY)

    @property
    def queues(self) -> str:
        """Set of the queue names submitted to or served (what ``status`` reports depth for)."""
        return f"{self.base}:queues"

    @property
    def dead(self) -> str:
        """Stream of entries that could not be run, each with its reason."""
        return f"{self.base}:dead"

    @property
    def workers(self) -> str:
        """Set of worker ids that sent a heartbeat (some may have expired since)."""
        return f"{self.base}:workers"

    def worker(self, worker_id: str) -> str:
        """A worker's heartbeat (JSON), expiring unless refreshed."""
        return f"{self.base}:worker:{worker_id}"

    def done(self, uid: str) -> str:
        """Marks a submission whose outcome was recorded, so a second run records nothing."""
        return f"{self.base}:done:{uid}"

    def reply(self, driver_id: str) -> str:
        """List where workers push the outcomes of one driver's submissions."""
        return f"{self.base}:reply:{driver_id}"

    def channel(self, session_id: str) -> str:
        """Common prefix of one run's channel keys: a hash tag of its own, so runs spread over a cluster."""
        return f"{{{self.prefix}:ch:{session_id}}}"

    @property
    def runs(self) -> str:
        """Sorted set of run ids, scored by start time: what ``graflow runs`` lists."""
        return f"{self.base}:runs"

    def feedback(self, feedback_id: str) -> str:
        """Hash: ``request`` (JSON) and, once answered, ``response`` (JSON) of one feedback request."""
        return f"{self.base}:fb:{feedback_id}"

    @property
    def feedback_pending(self) -> str:
        """Sorted set of the ids of unanswered feedback requests, scored by when they were made."""
        return f"{self.base}:fb:pending"

    def feedback_wake(self, feedback_id: str) -> str:
        """List the answer pushes to, waking the task blocked on it."""
        return f"{self.base}:fb:{feedback_id}:wake"

    @property
    def schedules(self) -> str:
        """Hash: schedule name -> its definition (JSON, sealed with a key)."""
        return f"{self.base}:schedules"

    def schedule(self, name: str) -> str:
        """Hash: one schedule's state (``paused``, ``last_tick``, ``last_run``, ``last_status``, ``fired``)."""
        return f"{self.base}:schedule:{name}"

    def schedule_after(self, name: str, upstream_run: str) -> str:
        """Marks that ``name`` fired after ``upstream_run`` (set once, expiring)."""
        return f"{self.base}:schedule:{name}:after:{upstream_run}"

    def run(self, run_id: str) -> RunKeys:
        """The keys of one run's state (the Redis state store), on the prefix's slot."""
        return RunKeys(f"{self.base}:run:{run_id}")


@dataclass(frozen=True)
class RunKeys:
    """One run's state: every key starts with ``{PREFIX}:run:RUN_ID:`` and expires with the run."""

    base: str

    @property
    def info(self) -> str:
        """Hash: workflow, status, times, counts, error, backends."""
        return f"{self.base}:info"

    @property
    def plan(self) -> str:
        """The run's plan (graph by value), written once."""
        return f"{self.base}:plan"

    @property
    def lease(self) -> str:
        """Who drives the run now (``host:pid``), expiring unless renewed."""
        return f"{self.base}:lease"

    @property
    def steps(self) -> str:
        """Hash: step key -> completion (what the step asked for, who ran it)."""
        return f"{self.base}:steps"

    @property
    def order(self) -> str:
        """List of step keys in the order they were recorded."""
        return f"{self.base}:order"

    @property
    def done(self) -> str:
        """Set of the task ids that completed at least once."""
        return f"{self.base}:done"

    @property
    def results(self) -> str:
        """Hash: task id -> latest result."""
        return f"{self.base}:results"

    @property
    def failures(self) -> str:
        """List of the attempts that raised (JSON), in the order they ended: for people, never replayed."""
        return f"{self.base}:failures"

    @property
    def submissions(self) -> str:
        """Hash: step key -> uid of the entry that runs it, so a resumed driver adopts it."""
        return f"{self.base}:subs"

    def all(self) -> list[str]:
        return [
            self.info,
            self.plan,
            self.lease,
            self.steps,
            self.order,
            self.done,
            self.results,
            self.failures,
            self.submissions,
        ]
