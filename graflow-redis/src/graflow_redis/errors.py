"""The errors graflow-redis raises; all are :class:`graflow.exceptions.GraflowError` subclasses."""

from __future__ import annotations

from graflow.core.routing import DEFAULT_QUEUE
from graflow.exceptions import ConfigError, ExecutorUnavailableError, GraflowRuntimeError, StateStoreError

__all__ = [
    "NoWorkerAvailableError",
    "OutcomeDecodeError",
    "RedisURLError",
    "RedisUnavailableError",
    "SecretKeyRequiredError",
    "SignatureError",
    "StateUnavailableError",
    "TaskRejectedError",
    "UntrustedStateError",
]


class NoWorkerAvailableError(ExecutorUnavailableError):
    """No live ``graflow-worker`` of this key prefix served the task's queue while the driver waited."""

    def __init__(
        self, task_id: str, key_prefix: str, where: str, waited: float, queue: str = DEFAULT_QUEUE
    ) -> None:
        self.task_id = task_id
        self.key_prefix = key_prefix
        self.where = where
        self.waited = waited
        self.queue = queue
        if queue == DEFAULT_QUEUE:
            missing, serve = "no graflow-worker is alive", ""
        else:
            missing, serve = f"no live graflow-worker serves queue {queue!r}", f" --queues {queue}"
        super().__init__(
            f"task {task_id!r} was not run: {missing} for key prefix {key_prefix!r} on {where} (waited "
            f"{waited:.1f}s). Start one with `graflow-worker --redis-url {where} --key-prefix {key_prefix}"
            f"{serve}`, or raise worker_wait_timeout in the run's config."
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str, float, str]]:
        return (type(self), (self.task_id, self.key_prefix, self.where, self.waited, self.queue))


class TaskRejectedError(GraflowRuntimeError):
    """A worker could not decode, verify or unpickle a task; the entry is in the dead-letter stream."""

    def __init__(self, task_id: str, reason: str, dead_letter_stream: str, worker: str = "") -> None:
        self.task_id = task_id
        self.reason = reason
        self.dead_letter_stream = dead_letter_stream
        self.worker = worker
        by = f" by worker {worker!r}" if worker else ""
        super().__init__(
            f"task {task_id!r} was rejected{by} and moved to the dead-letter stream "
            f"{dead_letter_stream!r}: {reason}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        # Travels from the worker that rejected the entry to the driver, inside an outcome.
        return (type(self), (self.task_id, self.reason, self.dead_letter_stream, self.worker))


class SignatureError(GraflowRuntimeError):
    """A blob read from Redis is unsigned, or its seal does not match its place, and the reader has a key.

    Nothing of it was unpickled.
    """


class SecretKeyRequiredError(ConfigError):
    """A process would read pickles from a Redis that is not on loopback, without a secret key.

    Raised when a queue, channel or state store is built, before anything is read.
    """


class RedisURLError(ConfigError):
    """A Redis URL (``redis+sentinel://``, ``redis+cluster://``) is malformed; the message gives the form."""


class UntrustedStateError(StateStoreError, SignatureError):
    """Part of a run's state in Redis failed verification; nothing of it was unpickled."""


class OutcomeDecodeError(GraflowRuntimeError):
    """A task ran, but the driver could not verify or unpickle what the worker sent back."""


class RedisUnavailableError(ExecutorUnavailableError, ConnectionError):
    """Redis did not answer within the retry budget."""


class StateUnavailableError(StateStoreError, RedisUnavailableError):
    """Redis did not answer within the retry budget while a run's state was being written.

    A store failure (the run stops, and is resumed once Redis is back) and a Redis outage alike.
    """
