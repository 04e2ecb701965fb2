"""``RedisChannel``: a run's channel in Redis, shared by the driver and every worker.

Each channel key is its own Redis key under ``{PREFIX:ch:SESSION_ID}:v:`` (a hash tag per run), so a
``ttl`` is Redis's own expiry; a sorted set keeps the live keys in insertion order for
:meth:`keys`. Values are stored so that Redis itself can operate on them:

* ``int`` (64-bit) and ``float`` as their decimal text, so :meth:`atomic_add` is one Lua
  script (``INCRBY`` for ints, IEEE double addition for floats: the sum is exactly what
  Python computes, and an int stays an int);
* lists built by :meth:`append` / :meth:`prepend` as Redis lists of pickled items, so
  concurrent appends from many workers never lose an item;
* everything else as a cloudpickle blob, sealed for its channel key when this process
  has a secret key (:mod:`graflow_redis.signing`), and verified before it is unpickled;
  so is every item of a list. Numbers stored as text are not pickles and carry no seal.
  Without a key, a channel on a Redis that is not on loopback is refused
  (:mod:`graflow_redis.trust`).

A worker opens the channel of each task it runs for that task's submission
(``submission``: its uid). Every write of the attempt (``set``, ``delete``, ``append``,
``prepend``, ``atomic_add``) is then numbered, and its script records it as applied, with
what it returned, in one hash per submission: when the submission runs again (its worker
died mid-task), the writes the earlier attempt made are not made twice, and return what
they returned then. So counters and lists come out exact under worker crashes, as long as
a task makes its writes in the same order each time it runs. Not covered: ``clear``, and
the rare fallbacks that rewrite a key from Python (a list given to ``set`` then appended to,
an ``atomic_add`` beyond 64 bits).

Locks are ``SET NX PX`` with an owner token, renewed while held and released by a Lua
script only by their owner; a release wakes one waiter through a short list, so
waiters block instead of spinning.
"""

from __future__ import annotations

import itertools
import pickle
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import cloudpickle
import redis

from graflow import settings
from graflow.channels.base import Channel
from graflow.exceptions import LockTimeoutError
from graflow_redis import scripts
from graflow_redis.connection import call_with_retry, client_from_config, describe, url_of
from graflow_redis.errors import SignatureError
from graflow_redis.keys import RUN_KEYS_TTL, Keys
from graflow_redis.outage import DEFAULT_RETRY_TIMEOUT, rides_out
from graflow_redis.signing import ENV_VAR, KeySpec, Purpose, Sealer, Slot, is_sealed
from graflow_redis.trust import sealer_for, trust_options

__all__ = ["RedisChannel", "expire_channel"]

_INT: Final = re.compile(rb"-?\d+")
_INT64: Final = range(-(2**63), 2**63)
#: Seconds a lock survives a holder that died without releasing it (renewed while held).
DEFAULT_LOCK_LEASE: Final = 30.0
#: Seconds a submission's record of applied writes is kept: far longer than any redelivery.
APPLIED_TTL: Final = 86_400


def encode(value: Any) -> bytes:
    """Channel value -> bytes: numbers as text (Redis can add to them), the rest pickled."""
    kind = type(value)
    if kind is int and value in _INT64:
        return str(value).encode()
    if kind is float:
        return repr(value).encode()  # always has ".", "e", "inf" or "nan": never read back as int
    blob: bytes = cloudpickle.dumps(value)
    return blob


def decode(raw: bytes) -> Any:
    """Inverse of :func:`encode` (unpickles: only for what this process trusts or verified)."""
    if raw[:1] == b"\x80":
        return pickle.loads(raw)
    if _INT.fullmatch(raw):
        return int(raw)
    return float(raw)


def _is_text(raw: bytes) -> bool:
    """Whether ``raw`` is a number written as text, as far as its first bytes tell: no pickle, no seal."""
    return raw[:1] != b"\x80" and not is_sealed(raw)


class RedisChannel(Channel):
    """The Redis channel backend (``channel_backend="redis"``); see the module docs.

    ``RedisChannel(session_id, redis_client=r, key_prefix="graflow")``; a run builds it
    from its config. Thread- and process-safe: every operation is one Redis command or
    one Lua script.
    """

    def __init__(
        self,
        name: str,
        redis_client: redis.Redis | None = None,
        *,
        redis_url: str | None = None,
        redis_cluster: bool = False,
        key_prefix: str = "graflow",
        lock_lease: float = DEFAULT_LOCK_LEASE,
        connection_retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        client_ref: str | None = None,
        secret_key: KeySpec | Sealer | None = None,
        allow_unsigned: bool | None = None,
        submission: str | None = None,
    ) -> None:
        super().__init__(name)
        self.client = client_from_config(
            {
                "redis_client": redis_client,
                "redis_url": redis_url,
                "redis_cluster": redis_cluster,
                "client_ref": client_ref,
            }
        )
        self.key_prefix = key_prefix
        #: Seals pickled values written here and verifies them when read (``None``: unsigned).
        self.sealer = sealer_for(self.client, secret_key, allow_unsigned, key_prefix=key_prefix)
        self.lock_lease = settings.seconds("lock_lease", lock_lease)
        #: Seconds an operation waits through a Redis outage before the task sees it fail.
        self.retry_timeout = settings.seconds("connection_retry_timeout", connection_retry_timeout)
        base = Keys(key_prefix).channel(name)
        self._values = f"{base}:v:"
        self._index = f"{base}:keys"
        self._locks = f"{base}:lock:"
        self._wakes = f"{base}:wake:"
        #: Where this submission's applied writes are recorded (the index, unused, without one).
        self._applied = f"{base}:applied:{submission}" if submission else self._index
        self._submission = submission
        self._writes = itertools.count(1)
        client = self.client
        self._set = self._script(scripts.CHANNEL_SET)
        self._get = self._script(scripts.CHANNEL_GET)
        self._push = self._script(scripts.CHANNEL_PUSH)
        self._add = self._script(scripts.CHANNEL_ADD)
        self._delete = self._script(scripts.CHANNEL_DELETE)
        self._keys = self._script(scripts.CHANNEL_KEYS)
        self._clear = self._script(scripts.CHANNEL_CLEAR)
        self._release = client.register_script(scripts.LOCK_RELEASE)
        self._renew = client.register_script(scripts.LOCK_RENEW)

    def _script(self, source: str) -> Callable[..., Any]:
        """A script that rides out a Redis outage for :attr:`retry_timeout`, as the queue does.

        A task touching its channel while Redis restarts or fails over waits for it to come
        back instead of failing. A push whose reply was lost may be applied twice, as with
        redis-py's own retries.
        """
        script = self.client.register_script(source)
        where = describe(self.client)

        def call(keys: list[str], args: list[Any] | None = None) -> Any:
            return call_with_retry(
                lambda: script(keys=keys, args=args or []),
                what=f"channel {self.name!r}",
                where=where,
                timeout=self.retry_timeout,
            )

        return call

    @classmethod
    def from_config(cls, session_id: str, config: Mapping[str, Any]) -> RedisChannel:
        """Build from a run's ``config`` (what ``ExecutionContext.create`` and workers pass)."""
        return cls(
            session_id,
            config.get("redis_client"),
            redis_url=config.get("redis_url"),
            redis_cluster=bool(config.get("redis_cluster")),
            key_prefix=settings.key_prefix(config),
            lock_lease=config.get("lock_lease", DEFAULT_LOCK_LEASE),
            connection_retry_timeout=config.get("connection_retry_timeout", DEFAULT_RETRY_TIMEOUT),
            client_ref=config.get("client_ref"),
            submission=config.get("submission"),
            **trust_options(config),
        )

    def remote_spec(self) -> tuple[str, dict[str, Any]]:
        """Workers reconnect to this same channel (through their own queue connection when shared)."""
        return (
            "redis",
            {
                "redis_url": url_of(self.client),
                "key_prefix": self.key_prefix,
                "lock_lease": self.lock_lease,
                "connection_retry_timeout": self.retry_timeout,
                "shared_with_queue": True,
            },
        )

    # --- values ---------------------------------------------------------------------------

    def _encode(self, key: str, value: Any, purpose: Purpose = Purpose.CHANNEL) -> bytes:
        """``value`` as stored under ``key``: a pickle sealed for that key when this process has a key."""
        raw = encode(value)
        if self.sealer is None or raw[:1] != b"\x80":
            return raw
        return self.sealer.seal(Slot(purpose, self.key_prefix, self.name, key), raw)

    def _decode(self, key: str, raw: bytes, purpose: Purpose = Purpose.CHANNEL) -> Any:
        """Inverse of :meth:`_encode`: a pickle is unpickled only once its seal for ``key`` holds."""
        if self.sealer is not None and not _is_text(raw):
            return pickle.loads(self.sealer.open(Slot(purpose, self.key_prefix, self.name, key), raw))
        try:
            return decode(raw)
        except ValueError:
            if is_sealed(raw):
                raise SignatureError(
                    f"channel key {key!r} of run {self.name!r} holds a signed value, but this process has "
                    f"no secret key to verify it: give it the key of the run's other processes (${ENV_VAR})"
                ) from None
            raise

    def _once(self) -> list[Any]:
        """The ARGV tail that numbers this write of the submission (see the module docs)."""
        field = f"{next(self._writes)}" if self._submission else ""
        return [field, APPLIED_TTL]

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
        ttl_ms = "" if ttl is None else max(int(ttl * 1000), 1)
        self._set(
            keys=[self._values + key, self._index, self._applied],
            args=[self._encode(key, value), ttl_ms, key, RUN_KEYS_TTL, *self._once()],
        )

    def get(self, key: str, default: Any = None) -> Any:
        found = self._get(keys=[self._values + key])
        if found[0] == 1:
            return self._decode(key, found[1])
        if found[0] == 2:
            return [self._decode(key, item, Purpose.CHANNEL_ITEM) for item in found[1]]
        return default

    def delete(self, key: str) -> bool:
        return bool(
            self._delete(keys=[self._values + key, self._index, self._applied], args=[key, *self._once()])
        )

    @rides_out
    def exists(self, key: str) -> bool:
        return bool(self.client.exists(self._values + key))

    def keys(self) -> list[str]:
        return [k.decode() for k in self._keys(keys=[self._index], args=[self._values])]

    def clear(self) -> None:
        self._clear(keys=[self._index], args=[self._values])

    # --- atomic updates ---------------------------------------------------------------------

    def append(self, key: str, value: Any) -> int:
        return self._push_item(key, value, "R")

    def prepend(self, key: str, value: Any) -> int:
        return self._push_item(key, value, "L")

    def _push_item(self, key: str, value: Any, side: str) -> int:
        vkey = self._values + key
        item = self._encode(key, value, Purpose.CHANNEL_ITEM)
        once = self._once()
        while True:
            length = int(
                self._push(
                    keys=[vkey, self._index, self._applied], args=[item, side, key, RUN_KEYS_TTL, *once]
                )
            )
            if length >= 0:
                return length
            # The key holds a plain value (a list given to set()): turn it into a Redis list.
            self._listify(key, vkey)

    def _listify(self, key: str, vkey: str) -> None:
        """Rewrite a pickled list under ``vkey`` as a Redis list, keeping its TTL (optimistic)."""
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(vkey)  # type: ignore[no-untyped-call]
                if pipe.type(vkey) != b"string":
                    return  # changed meanwhile: let the script look again
                current = self._decode(key, pipe.get(vkey))  # type: ignore[arg-type]
                if not isinstance(current, list):
                    raise TypeError(f"channel key {key!r} holds a {type(current).__name__}, not a list")
                ttl_ms = pipe.pttl(vkey)
                pipe.multi()
                pipe.delete(vkey)
                if current:
                    pipe.rpush(vkey, *[self._encode(key, item, Purpose.CHANNEL_ITEM) for item in current])
                    if isinstance(ttl_ms, int) and ttl_ms > 0:
                        pipe.pexpire(vkey, ttl_ms)
                    else:
                        pipe.expire(vkey, RUN_KEYS_TTL)
                pipe.execute()
            except redis.WatchError:
                pass

    def atomic_add(self, key: str, amount: int | float = 1) -> int | float:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError(f"atomic_add amount must be an int or a float, got {type(amount).__name__}")
        vkey = self._values + key
        kind = "f" if isinstance(amount, float) else "i"
        if kind == "i" and amount not in _INT64:
            return self._add_in_python(key, vkey, amount)
        status, text = self._add(
            keys=[vkey, self._index, self._applied],
            args=[encode(amount), kind, key, RUN_KEYS_TTL, *self._once()],
        )
        if status == b"i":
            return int(text)
        if status == b"f":
            return float(text)
        return self._add_in_python(key, vkey, amount)

    def _add_in_python(self, key: str, vkey: str, amount: int | float) -> int | float:
        """Read-modify-write under WATCH, for what Lua cannot add (huge ints, non-numbers to reject)."""
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(vkey, self._index)  # type: ignore[no-untyped-call]
                    kind = pipe.type(vkey)
                    if kind == b"list":
                        raise TypeError(f"channel key {key!r} holds a list, not a number")
                    raw = pipe.get(vkey)
                    current = 0 if raw is None else self._decode(key, raw)  # type: ignore[arg-type]
                    if not isinstance(current, (int, float)) or isinstance(current, bool):
                        raise TypeError(f"channel key {key!r} holds a {type(current).__name__}, not a number")
                    total = current + amount
                    top: Any = pipe.zrange(self._index, -1, -1, withscores=True)
                    pipe.multi()
                    if raw is None:
                        pipe.set(vkey, self._encode(key, total), ex=RUN_KEYS_TTL)
                        pipe.zadd(self._index, {key: (float(top[0][1]) + 1) if top else 1})
                    else:
                        pipe.set(vkey, self._encode(key, total), keepttl=True)
                    pipe.execute()
                    return total
                except redis.WatchError:
                    continue

    # --- locks -------------------------------------------------------------------------------

    @contextmanager
    def lock(self, key: str, timeout: float = 10.0) -> Iterator[None]:
        lock_key, wake_key = self._locks + key, self._wakes + key
        token = uuid.uuid4().hex
        lease_ms = max(int(self.lock_lease * 1000), 100)
        deadline = time.monotonic() + timeout
        while not self._take_lock(lock_key, token, lease_ms):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(
                    f"channel lock {key!r} not acquired within {timeout}s; another task holds it. "
                    "Raise timeout= or keep locked sections short."
                )
            # Woken by a release; the short cap also notices a holder whose lease ran out.
            self._wait_for_release(wake_key, max(min(left, 0.1), 0.01))
        keeper = _LeaseKeeper(self._renew, lock_key, token, lease_ms)
        try:
            yield
        finally:
            keeper.stop()
            self._give_back_lock(lock_key, wake_key, token, lease_ms)

    @rides_out
    def _take_lock(self, lock_key: str, token: str, lease_ms: int) -> bool:
        # Ours already: a retry after a reply lost in an outage must not wait for our own lease.
        return bool(self.client.set(lock_key, token, nx=True, px=lease_ms)) or self.client.get(lock_key) == (
            token.encode()
        )

    @rides_out
    def _wait_for_release(self, wake_key: str, seconds: float) -> None:
        self.client.blpop([wake_key], timeout=seconds)

    @rides_out
    def _give_back_lock(self, lock_key: str, wake_key: str, token: str, lease_ms: int) -> None:
        self._release(keys=[lock_key, wake_key], args=[token, lease_ms])

    def __repr__(self) -> str:
        return f"<RedisChannel {self.name!r} prefix={self.key_prefix!r}>"


def expire_channel(client: redis.Redis, key_prefix: str, session_id: str, seconds: int) -> int:
    """Keep run ``session_id``'s channel ``seconds`` more (its run finished): values with a longer
    or no ttl get this one, and so does the index. Returns how many values were given it.

    While a run goes on, every write gives its value (unless it has a ttl of its own) and the
    index an idle expiry of ``RUN_KEYS_TTL``, so the channel of a run whose driver died expires too.
    """
    base = Keys(key_prefix).channel(session_id)
    expire = client.register_script(scripts.CHANNEL_EXPIRE)
    return int(expire(keys=[f"{base}:keys"], args=[f"{base}:v:", max(int(seconds * 1000), 1)]))


class _LeaseKeeper:
    """Renews a held lock's lease every third of it, so a long critical section keeps its lock."""

    def __init__(self, renew: Any, lock_key: str, token: str, lease_ms: int) -> None:
        self._stopped = threading.Event()
        self._args = (renew, lock_key, token, lease_ms)
        self._thread = threading.Thread(target=self._run, name="graflow-redis-lock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        renew, lock_key, token, lease_ms = self._args
        while not self._stopped.wait(lease_ms / 3000):
            try:
                if not renew(keys=[lock_key], args=[token, lease_ms]):
                    return  # lost it (expired while Redis was away): nothing left to renew
            except redis.RedisError:
                continue

    def stop(self) -> None:
        self._stopped.set()
