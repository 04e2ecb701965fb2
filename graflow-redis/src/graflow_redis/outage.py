"""``rides_out``: a call a task makes to Redis waits through an outage instead of failing the task.

redis-py retries a failed command for about two seconds and a half; a Redis restart takes
longer. Methods decorated with :func:`rides_out` are retried with backoff for up to the object's
``retry_timeout`` (the run's ``connection_retry_timeout``) before the task sees
:class:`~graflow_redis.errors.RedisUnavailableError`. The first attempt runs as a plain
call: nothing is paid while Redis answers.

Used for the calls that are not channel scripts (those ride out outages through the channel's
own wrapper): ``exists``, a channel lock, and the run's results read by a task.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, Final, ParamSpec, Protocol, TypeVar

import redis

from graflow_redis.connection import CONNECTION_ERRORS, call_with_retry, describe
from graflow_redis.log import emit

__all__ = ["DEFAULT_RETRY_TIMEOUT", "Retrying", "rides_out"]

#: Seconds a call is retried while Redis is unreachable, unless the run says otherwise.
DEFAULT_RETRY_TIMEOUT: Final = 60.0

P = ParamSpec("P")
R = TypeVar("R")


class Retrying(Protocol):
    """What :func:`rides_out` needs from the object whose methods it decorates."""

    client: redis.Redis
    #: Seconds to keep retrying while Redis is unreachable.
    retry_timeout: float


S = TypeVar("S", bound=Retrying)


def rides_out(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Retry ``method`` while Redis is unreachable, for up to ``self.retry_timeout`` seconds."""

    @functools.wraps(method)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except CONNECTION_ERRORS as exc:
            where = describe(self.client)
            emit("warning", "redis_unreachable", action=method.__name__, redis=where, error=str(exc))
            return call_with_retry(
                lambda: method(self, *args, **kwargs),
                what=f"{type(self).__name__}.{method.__name__}",
                where=where,
                timeout=self.retry_timeout,
            )

    return call  # type: ignore[return-value]  # functools.wraps keeps the signature
