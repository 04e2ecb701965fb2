"""``refusal``: a Redis error that waiting does not fix, told as what to change.

Connection errors are retried (:mod:`graflow_redis.connection`); these are not, since
Redis answered: it refused. Retrying them only runs tasks again (a worker whose outcome
cannot be recorded gives its task to another, which cannot record it either), so they
surface at once, each as a :class:`~graflow_redis.errors.RedisRefusedError` that names
the Redis condition and the setting to fix.
"""

from __future__ import annotations

from typing import Final

import redis

from graflow_redis.errors import RedisRefusedError

__all__ = ["refusal"]

#: Error code (the first word of Redis's reply) -> what it means and what to change.
_ADVICE: Final = {
    "OOM": (
        "is out of memory (used memory reached maxmemory, and its maxmemory-policy evicts nothing)",
        "raise maxmemory (CONFIG SET maxmemory ..., or in redis.conf), or free memory: finished runs "
        "are kept run_ttl seconds (lower it), dead letters in the '{{{prefix}}}:dead' stream can go. "
        "Do not switch to an evicting policy: evicted run state fails runs with RunStateLostError",
    ),
    "READONLY": (
        "is a read-only replica",
        "point redis_url (--redis-url, REDIS_URL) at the primary, or through Sentinel at the master",
    ),
    "NOPERM": (
        "denies this user a command or key it needs (ACL)",
        "grant the user Graflow's commands on its keys, e.g. ACL SETUSER <user> ~{{{prefix}* +@all "
        "-@dangerous +info, or use another user in redis_url",
    ),
    "NOAUTH": (
        "requires a password",
        "put the user and password in redis_url: redis://user:password@host:6379/0",
    ),
    "WRONGPASS": ("refused the user or password", "check the user and password in redis_url"),
    "MISCONF": (
        "refuses writes because it cannot save its data (stop-writes-on-bgsave-error)",
        "fix the disk or the dir Redis saves to, then writes resume",
    ),
}


def refusal(
    exc: BaseException, *, where: str, doing: str, key_prefix: str = "graflow"
) -> RedisRefusedError | None:
    """``exc`` as a :class:`RedisRefusedError` when it is one of Redis's refusals, else ``None``.

    ``doing`` says what was refused (``"submitting task 'load'"``); ``where`` is the server.
    """
    if isinstance(exc, RedisRefusedError):
        return exc
    if not isinstance(exc, (redis.ResponseError, redis.AuthenticationError)):
        return None
    text = str(exc)
    code = text.split(" ", 1)[0].upper() if text else ""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        code = "OOM"
    elif isinstance(exc, redis.exceptions.ReadOnlyError):
        code = "READONLY"
    elif isinstance(exc, redis.exceptions.NoPermissionError):
        code = "NOPERM"
    elif isinstance(exc, redis.AuthenticationError) and code not in _ADVICE:
        code = "WRONGPASS"
    advice = _ADVICE.get(code)
    if advice is None:
        return None
    condition, fix = advice
    return RedisRefusedError(
        f"{doing}: Redis at {where} {condition} ({code}: {text}). To fix: {fix.format(prefix=key_prefix)}.",
        code,
    )
