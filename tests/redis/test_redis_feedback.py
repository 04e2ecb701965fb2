"""The feedback contract over Redis (SPEC 17): questions of Redis runs, kept under the key prefix."""

from __future__ import annotations

import pytest
import redis

from graflow.hitl import FeedbackError, FeedbackManager, FeedbackRequest, FeedbackResponse, FeedbackType
from graflow_redis.keys import Keys
from graflow_redis.store import RedisStore
from tests.core.hitl.contract import FeedbackContract


class TestRedisFeedback(FeedbackContract):
    @pytest.fixture
    def manager(self, redis_client: redis.Redis, key_prefix: str) -> FeedbackManager:
        return FeedbackManager(RedisStore(redis_client, key_prefix, allow_unsigned=True).feedback())


class TestSealedRedisFeedback(FeedbackContract):
    @pytest.fixture
    def manager(self, redis_client: redis.Redis, key_prefix: str) -> FeedbackManager:
        return FeedbackManager(RedisStore(redis_client, key_prefix, secret_key=KEY).feedback())


KEY = "feedback-test-key-0123456789"


def sealed(redis_client: redis.Redis, key_prefix: str) -> FeedbackManager:
    return FeedbackManager(RedisStore(redis_client, key_prefix, secret_key=KEY).feedback())


def test_an_answer_forged_without_the_key_is_refused_never_taken(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    manager = sealed(redis_client, key_prefix)
    manager.backend.create(FeedbackRequest("deploy", "r", "t", FeedbackType.APPROVAL, "Deploy?"))
    forged = b'{"response_type": "approval", "approved": true, "responded_by": "mallory"}'
    redis_client.hset(Keys(key_prefix).feedback("deploy"), "response", forged)

    with pytest.raises(FeedbackError, match="the answer to feedback request 'deploy'.*is not signed"):
        manager.get_request("deploy")
    with pytest.raises(FeedbackError, match="refused, not taken"):
        manager.backend.wait("deploy", 0.1)


def test_an_answer_signed_for_another_question_is_refused(redis_client: redis.Redis, key_prefix: str) -> None:
    manager = sealed(redis_client, key_prefix)
    for feedback_id in ("harmless", "deploy"):
        manager.backend.create(FeedbackRequest(feedback_id, "r", "t", FeedbackType.APPROVAL, "?"))
    manager.provide_feedback("harmless", FeedbackResponse(approved=True))
    keys = Keys(key_prefix)
    replayed = redis_client.hget(keys.feedback("harmless"), "response")
    assert replayed is not None
    redis_client.hset(keys.feedback("deploy"), "response", replayed)

    with pytest.raises(FeedbackError, match="does not match"):
        manager.get_request("deploy")


def test_a_forged_question_is_not_listed(redis_client: redis.Redis, key_prefix: str) -> None:
    manager = sealed(redis_client, key_prefix)
    manager.backend.create(FeedbackRequest("real", "r", "t", FeedbackType.APPROVAL, "?"))
    keys = Keys(key_prefix)
    redis_client.hset(keys.feedback("forged"), "request", b'{"feedback_id": "forged"}')
    redis_client.zadd(keys.feedback_pending, {"forged": 0})

    assert [r.feedback_id for r in manager.list_pending_requests()] == ["real"]


def test_a_request_that_expired_with_its_run_leaves_the_pending_list(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    manager = FeedbackManager(RedisStore(redis_client, key_prefix, allow_unsigned=True).feedback())
    for feedback_id in ("kept", "expired"):
        manager.backend.create(FeedbackRequest(feedback_id, "r", "t", FeedbackType.APPROVAL, "?"))
    keys = Keys(key_prefix)
    redis_client.delete(keys.feedback("expired"))

    assert [r.feedback_id for r in manager.list_pending_requests()] == ["kept"]
    assert redis_client.zrange(keys.feedback_pending, 0, -1) == [b"kept"]


def test_requests_are_json_that_any_client_can_read(redis_client: redis.Redis, key_prefix: str) -> None:
    manager = FeedbackManager(RedisStore(redis_client, key_prefix, allow_unsigned=True).feedback())
    manager.backend.create(
        FeedbackRequest("q", "r", "t", FeedbackType.SELECTION, "Where?", options=["a", "b"])
    )

    stored = redis_client.hget(Keys(key_prefix).feedback("q"), "request")

    assert stored is not None and b'"options": ["a", "b"]' in stored and b'"prompt": "Where?"' in stored
