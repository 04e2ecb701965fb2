"""The feedback contract over Redis (SPEC 17): questions of Redis runs, kept under the key prefix."""

from __future__ import annotations

import pytest
import redis

from graflow.hitl import FeedbackManager, FeedbackRequest, FeedbackType
from graflow_redis.keys import Keys
from graflow_redis.store import RedisStore
from tests.core.hitl.contract import FeedbackContract


class TestRedisFeedback(FeedbackContract):
    @pytest.fixture
    def manager(self, redis_client: redis.Redis, key_prefix: str) -> FeedbackManager:
        return FeedbackManager(RedisStore(redis_client, key_prefix).feedback())


def test_a_request_that_expired_with_its_run_leaves_the_pending_list(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    manager = FeedbackManager(RedisStore(redis_client, key_prefix).feedback())
    for feedback_id in ("kept", "expired"):
        manager.backend.create(FeedbackRequest(feedback_id, "r", "t", FeedbackType.APPROVAL, "?"))
    keys = Keys(key_prefix)
    redis_client.delete(keys.feedback("expired"))

    assert [r.feedback_id for r in manager.list_pending_requests()] == ["kept"]
    assert redis_client.zrange(keys.feedback_pending, 0, -1) == [b"kept"]


def test_requests_are_json_that_any_client_can_read(redis_client: redis.Redis, key_prefix: str) -> None:
    manager = FeedbackManager(RedisStore(redis_client, key_prefix).feedback())
    manager.backend.create(
        FeedbackRequest("q", "r", "t", FeedbackType.SELECTION, "Where?", options=["a", "b"])
    )

    stored = redis_client.hget(Keys(key_prefix).feedback("q"), "request")

    assert stored is not None and b'"options": ["a", "b"]' in stored and b'"prompt": "Where?"' in stored
