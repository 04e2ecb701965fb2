"""Whether a process may read pickles from a Redis: with a secret key, on loopback, or when told to.

Whoever can write to Redis can run code wherever a pickle read from it is unpickled, so
every part that unpickles (the queue, the channel, the state store) asks
:func:`sealer_for` when it is built:

* a secret key (``secret_key``, else ``$GRAFLOW_SECRET_KEY``; several comma-separated
  keys rotate: the first signs) gives a :class:`~graflow_redis.signing.Sealer`, and
  everything read is verified before it is unpickled;
* without one, ``allow_unsigned=True`` (else ``$GRAFLOW_ALLOW_UNSIGNED``) reads unsigned;
* without either, a Redis on loopback (``127.0.0.0/8``, ``::1``, ``localhost``, a unix
  socket) is read unsigned with a warning, once per process and server (``redis_unsigned``
  on logger ``graflow.redis``); any other Redis is refused with
  :class:`~graflow_redis.errors.SecretKeyRequiredError`, saying what to set.

A worker hands its own sealer to the channel and results store its tasks open through a
``sealer_ref`` (:func:`register_sealer`): keys never travel with a task.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

import redis
from redis.sentinel import SentinelConnectionPool

from graflow_redis.cluster import is_cluster
from graflow_redis.connection import call_with_retry, describe
from graflow_redis.errors import SecretKeyRequiredError
from graflow_redis.log import emit
from graflow_redis.signing import ENV_VAR, KeySpec, Sealer

__all__ = [
    "ENV_ALLOW_UNSIGNED",
    "allows_unsigned",
    "assume_warned",
    "is_loopback",
    "is_loopback_host",
    "register_sealer",
    "registered_sealers",
    "sealer_for",
    "trust_options",
    "unsigned_warnings",
]

#: How long a process starting without a key waits for sentinels on loopback to name the primary.
SENTINEL_WAIT: Final = 60.0

#: Environment variable that allows unsigned payloads (``1``, ``true``, ``yes``) when no key is set.
ENV_ALLOW_UNSIGNED: Final = "GRAFLOW_ALLOW_UNSIGNED"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})

_sealers: weakref.WeakValueDictionary[str, Sealer] = weakref.WeakValueDictionary()


#: Servers this process has said it reads unsigned (once per process and server is enough).
_warned: set[str] = set()


def unsigned_warnings() -> frozenset[str]:
    """The servers this process has warned it reads unsigned (see :func:`sealer_for`)."""
    return frozenset(_warned)


def assume_warned(servers: Iterable[str]) -> None:
    """Count ``servers`` as warned about here: a child process whose parent already said it."""
    _warned.update(servers)


def register_sealer(sealer: Sealer, ref: str | None = None) -> str:
    """A name for ``sealer`` that :func:`trust_options` resolves in this process (``sealer_ref``).

    ``ref`` gives it a name chosen elsewhere (see :func:`~graflow_redis.connection.register_client`).
    """
    ref = ref or f"sealer-{id(sealer):x}"
    _sealers[ref] = sealer
    return ref


def registered_sealers() -> dict[str, Sealer]:
    """Every sealer registered in this process and still alive, by name."""
    return dict(_sealers.items())


def trust_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``secret_key`` and ``allow_unsigned`` keyword arguments from a config (a ``sealer_ref`` wins)."""
    ref = config.get("sealer_ref")
    sealer = _sealers.get(str(ref)) if ref is not None else None
    return {
        "secret_key": sealer if sealer is not None else config.get("secret_key"),
        "allow_unsigned": config.get("allow_unsigned"),
    }


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def allows_unsigned(allow_unsigned: bool | str | None) -> bool:
    """``allow_unsigned`` if given, else ``$GRAFLOW_ALLOW_UNSIGNED``."""
    if allow_unsigned is None:
        return _truthy(os.environ.get(ENV_ALLOW_UNSIGNED, ""))
    return _truthy(allow_unsigned)


def sealer_for(
    client: redis.Redis,
    secret_key: KeySpec | Sealer | None = None,
    allow_unsigned: bool | str | None = None,
    *,
    key_prefix: str,
) -> Sealer | None:
    """The sealer a part reading ``client``'s Redis uses, ``None`` to read unsigned (see the module docs)."""
    if isinstance(secret_key, Sealer):
        return secret_key
    sealer = Sealer.from_keys(secret_key)
    if sealer is not None or allows_unsigned(allow_unsigned):
        return sealer
    where = describe(client)
    if is_loopback(client):
        _warn_unsigned(where)
        return None
    raise SecretKeyRequiredError(
        f"Redis at {where} is not on loopback, and Graflow unpickles what it reads there: without a "
        "secret key, whoever can write to that Redis could run code in this process. Set the key every "
        f"driver and worker of key prefix {key_prefix!r} shares: {ENV_VAR}=<key> in the environment "
        "(several comma-separated keys to rotate: the first signs, any verifies), or config "
        "{'secret_key': ...}, or graflow-worker --secret-key. To read unsigned payloads anyway, on a "
        "network where only trusted processes reach Redis, pass --allow-unsigned (graflow-worker, "
        f"graflow run/resume/rerun/runs), config {{'allow_unsigned': True}} or {ENV_ALLOW_UNSIGNED}=1."
    )


def _warn_unsigned(where: str) -> None:
    if where in _warned:
        return
    _warned.add(where)
    emit(
        "warning",
        "redis_unsigned",
        redis=where,
        hint=f"without a secret key, anyone who can write to this Redis can run code in this process; "
        f"set {ENV_VAR} on every driver and worker",
    )


def is_loopback(client: redis.Redis) -> bool:
    """Whether ``client`` reaches a server on this machine only (a loopback address or a unix socket)."""
    if is_cluster(client):
        return all(is_loopback_host(str(node.host)) for node in cast(Any, client).get_nodes())
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        # The primary is wherever the sentinels say, now and after a failover: both must be local.
        hosts = [
            str(s.connection_pool.connection_kwargs.get("host")) for s in pool.sentinel_manager.sentinels
        ]
        if not all(is_loopback_host(h) for h in hosts):
            return False
        # Sentinels that are not up yet are waited for, as a server is: the answer needs them.
        primary = call_with_retry(
            pool.get_master_address,
            what="asking the sentinels where the primary is",
            where=describe(client),
            timeout=SENTINEL_WAIT,
        )
        return is_loopback_host(str(primary[0]))
    kwargs = pool.connection_kwargs
    if kwargs.get("path"):
        return True
    return is_loopback_host(str(kwargs.get("host") or "localhost"))


def is_loopback_host(host: str) -> bool:
    """``127.0.0.1``, ``::1`` and ``localhost`` are; a name is when every address it resolves to is."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False  # not resolvable here: certainly not known to be local
    addresses = [ipaddress.ip_address(str(a).partition("%")[0]) for a in found]
    return bool(addresses) and all(a.is_loopback for a in addresses)
