"""The feedback requests of Redis runs: what tasks on any worker asked people, under the key prefix.

Each request is a hash (``request``: its JSON; ``response``: the answer's JSON, once
given) and its id is in a sorted set of pending requests, oldest first. The asking task
blocks on its request's wake list (``BLPOP``), so an answer reaches it in one round trip,
from any process: ``graflow feedback respond``, a :class:`~graflow.hitl.FeedbackManager`
in a script, the dashboard. The answer is taken by one script (``HSETNX``): the first
answer wins, and the pending set and the wake list change with it.

Requests are JSON, never pickles: answering needs no code, and reading one runs none.
With a secret key both the request and its answer are sealed like everything else
(:mod:`graflow_redis.signing`): an approval is a decision, and someone who can write to
Redis but holds no key cannot forge one. A request or answer whose seal fails is refused
(:class:`~graflow.hitl.FeedbackError`), never taken.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from graflow.hitl.backend import FeedbackBackend, already_answered, unknown
from graflow.hitl.types import FeedbackError, FeedbackRequest, FeedbackResponse
from graflow.log import get_logger
from graflow_redis.connection import CONNECTION_ERRORS, block_seconds, call_with_retry, describe
from graflow_redis.errors import SignatureError
from graflow_redis.keys import RUN_KEYS_TTL
from graflow_redis.signing import Purpose, Sealer, Slot

if TYPE_CHECKING:
    import redis

    from graflow_redis.keys import Keys

__all__ = ["RedisFeedback"]

T = TypeVar("T")

#: Seconds a wake signal waits for a task that is not waiting (its run suspended): then it goes.
WAKE_TTL: Final = 60
#: Longest single blocking read; the wait loops until the request's own timeout.
BLOCK_CHUNK: Final = 5.0

#: Record a request unless it exists.  KEYS: request hash, pending set.
#: ARGV: request JSON, feedback id, ttl seconds, created_at.  Returns 1 if it was new.
_CREATE: Final = """
if redis.call('HSETNX', KEYS[1], 'request', ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
"""
#: Take the first answer.  KEYS: request hash, pending set, wake list.
#: ARGV: response JSON, feedback id, wake ttl.  Returns 0 unknown, 1 answered already, 2 taken.
_ANSWER: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'response', ARGV[1]) == 0 then return 1 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], '1')
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 2
"""


class RedisFeedback(FeedbackBackend):
    """Requests of one key prefix on one Redis."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, retry_timeout: float = 60.0, sealer: Sealer | None = None
    ) -> None:
        self._client = client
        self._keys = keys
        self._sealer = sealer
        self._retry_timeout = retry_timeout
        self._create = client.register_script(_CREATE)
        self._answer = client.register_script(_ANSWER)
        self.where = f"Redis at {describe(client)} (key prefix {keys.prefix!r})"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, what=what, where=describe(self._client), timeout=self._retry_timeout)

    def create(self, request: FeedbackRequest) -> tuple[FeedbackRequest, bool]:
        key = self._keys.feedback(request.feedback_id)
        new = self._call(
            f"recording feedback request {request.feedback_id!r}",
            lambda: self._create(
                keys=[key, self._keys.feedback_pending],
                args=[
                    self._seal(Purpose.QUESTION, request.feedback_id, _dumps(request)),
                    request.feedback_id,
                    RUN_KEYS_TTL,
                    request.created_at,
                ],
            ),
        )
        if new:
            return request, True
        return self.get(request.feedback_id), False

    def get(self, feedback_id: str) -> FeedbackRequest:
        fields = self._call(
            f"reading feedback request {feedback_id!r}",
            lambda: self._client.hmget(self._keys.feedback(feedback_id), "request", "response"),
        )
        request = self._loads(feedback_id, *fields)
        if request is None:
            raise unknown(feedback_id, self.where)
        return request

    def pending(self, run_id: str | None = None) -> list[FeedbackRequest]:
        ids = [raw.decode() for raw in self._call("listing feedback requests", self._read_pending)]
        if not ids:
            return []

        def read() -> list[list[bytes | None]]:
            pipe = self._client.pipeline(transaction=False)
            for feedback_id in ids:
                pipe.hmget(self._keys.feedback(feedback_id), "request", "response")
            return pipe.execute()

        found, gone = [], []
        for feedback_id, fields in zip(ids, self._call("listing feedback requests", read), strict=True):
            try:
                request = self._loads(feedback_id, *fields)
            except FeedbackError as exc:  # a forged request: never listed, so never answered
                get_logger("graflow.redis").warning(
                    "feedback_refused", feedback_id=feedback_id, error=str(exc)
                )
                continue
            if request is None:
                gone.append(feedback_id)  # expired with its run
            elif request.response is None and (run_id is None or request.run_id == run_id):
                found.append(request)
        if gone:
            self._client.zrem(self._keys.feedback_pending, *gone)
        return found

    def _read_pending(self) -> list[bytes]:
        return self._client.zrange(self._keys.feedback_pending, 0, -1)  # type: ignore[return-value]

    def answer(self, feedback_id: str, response: FeedbackResponse) -> FeedbackRequest:
        taken = self._call(
            f"answering feedback request {feedback_id!r}",
            lambda: self._answer(
                keys=[
                    self._keys.feedback(feedback_id),
                    self._keys.feedback_pending,
                    self._keys.feedback_wake(feedback_id),
                ],
                args=[self._seal(Purpose.ANSWER, feedback_id, _answer_json(response)), feedback_id, WAKE_TTL],
            ),
        )
        if taken == 0:
            raise unknown(feedback_id, self.where)
        request = self.get(feedback_id)
        if taken == 1:
            raise already_answered(request)
        return request

    def wait(self, feedback_id: str, timeout: float) -> FeedbackResponse | None:
        """Block on the request's wake list (no polling); look at the request after every wake-up."""
        deadline = time.monotonic() + timeout
        wake = self._keys.feedback_wake(feedback_id)
        while True:
            response = self.get(feedback_id).response
            left = deadline - time.monotonic()
            if response is not None or left <= 0:
                return response
            try:
                self._client.blpop([wake], timeout=block_seconds(self._client, min(left, BLOCK_CHUNK)))
            except CONNECTION_ERRORS:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # get() retries with backoff

    def _seal(self, purpose: Purpose, feedback_id: str, text: str) -> bytes:
        payload = text.encode()
        if self._sealer is None:
            return payload
        return self._sealer.seal(Slot(purpose, self._keys.prefix, "", feedback_id), payload)

    def _open(self, purpose: Purpose, feedback_id: str, blob: bytes | str) -> bytes:
        payload = blob.encode() if isinstance(blob, str) else blob
        if self._sealer is None:
            return payload
        try:
            return self._sealer.open(Slot(purpose, self._keys.prefix, "", feedback_id), payload)
        except SignatureError as exc:
            raise FeedbackError(f"{exc}; it is refused, not taken") from None

    def _loads(
        self, feedback_id: str, raw_request: bytes | str | None, raw_response: bytes | str | None
    ) -> FeedbackRequest | None:
        if raw_request is None:
            return None
        request = FeedbackRequest.from_json(
            json.loads(self._open(Purpose.QUESTION, feedback_id, raw_request))
        )
        if raw_response is not None:
            answer = json.loads(self._open(Purpose.ANSWER, feedback_id, raw_response))
            request.response = FeedbackResponse.from_json(answer)
        return request


def _dumps(request: FeedbackRequest) -> str:
    data = request.to_json()
    data["created_at"] = request.created_at  # exact; from_json reads both forms
    del data["response"]  # the answer lives in its own field, written once
    return json.dumps(data)


def _answer_json(response: FeedbackResponse) -> str:
    data = response.to_json()
    data["responded_at"] = response.responded_at  # exact
    return json.dumps(data)
