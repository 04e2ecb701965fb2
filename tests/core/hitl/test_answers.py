"""The feedback contract over the backends graflow-core has: in process, and the local SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graflow.hitl import FeedbackManager, InProcessFeedback
from graflow.state.local import LocalStore
from tests.core.hitl.contract import FeedbackContract


class TestInProcessFeedback(FeedbackContract):
    @pytest.fixture
    def manager(self) -> FeedbackManager:
        return FeedbackManager(InProcessFeedback())


class TestLocalFeedback(FeedbackContract):
    @pytest.fixture
    def manager(self, tmp_path: Path) -> Iterator[FeedbackManager]:
        store = LocalStore(tmp_path / "state")
        try:
            yield FeedbackManager(store.feedback())
        finally:
            store.close()
