"""The feedback requests of a local state directory: one row per request in its SQLite file.

Requests are JSON (what ``graflow feedback list --json`` prints), so any process that
opens the directory reads and answers them: the run's driver, a pool process running
the task, ``graflow feedback respond`` in another shell. The first answer wins inside
one ``BEGIN IMMEDIATE`` transaction.

Waiting: an answer given in this process wakes the waiting task at once (a condition
shared by every store object of the process); one given by another process is seen by
polling the row, first every 50 ms, then less often up to every 500 ms. SQLite has no
cross-process notification, and a question a person answers does not need better.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Final

from graflow.hitl.backend import FeedbackBackend, already_answered, unknown
from graflow.hitl.types import FeedbackRequest, FeedbackResponse

if TYPE_CHECKING:
    from graflow.state.local import LocalStore

__all__ = ["LocalFeedback"]

#: Pauses between looks at a request answered by another process: from the first to the last.
FIRST_POLL: Final = 0.05
LAST_POLL: Final = 0.5

#: Notified whenever a request of any local store is answered in this process.
_ANSWERED: Final = threading.Condition()


class LocalFeedback(FeedbackBackend):
    """Requests kept in the ``feedback`` table of a :class:`~graflow.state.local.LocalStore`."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store

    def create(self, request: FeedbackRequest) -> tuple[FeedbackRequest, bool]:
        with self._store.transaction() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO feedback (feedback_id, run_id, created_at, request) VALUES (?, ?, ?, ?)",
                (request.feedback_id, request.run_id, request.created_at, _dumps(request)),
            ).rowcount
        if added:
            return request, True
        return self.get(request.feedback_id), False

    def get(self, feedback_id: str) -> FeedbackRequest:
        with self._store.reading() as db:
            row = db.execute("SELECT request FROM feedback WHERE feedback_id = ?", (feedback_id,)).fetchone()
        if row is None:
            raise unknown(feedback_id, self._store.where)
        return FeedbackRequest.from_json(json.loads(row[0]))

    def pending(self, run_id: str | None = None) -> list[FeedbackRequest]:
        query = "SELECT request FROM feedback WHERE answered = 0"
        params: tuple[str, ...] = ()
        if run_id is not None:
            query += " AND run_id = ?"
            params = (run_id,)
        with self._store.reading() as db:
            rows = db.execute(query + " ORDER BY created_at", params).fetchall()
        return [FeedbackRequest.from_json(json.loads(row[0])) for row in rows]

    def answer(self, feedback_id: str, response: FeedbackResponse) -> FeedbackRequest:
        with self._store.transaction() as db:
            row = db.execute("SELECT request FROM feedback WHERE feedback_id = ?", (feedback_id,)).fetchone()
            if row is None:
                raise unknown(feedback_id, self._store.where)
            request = FeedbackRequest.from_json(json.loads(row[0]))
            if request.response is not None:
                raise already_answered(request)
            request.response = response
            db.execute(
                "UPDATE feedback SET answered = 1, request = ? WHERE feedback_id = ?",
                (_dumps(request), feedback_id),
            )
        with _ANSWERED:
            _ANSWERED.notify_all()
        return request

    def wait(self, feedback_id: str, timeout: float) -> FeedbackResponse | None:
        deadline = time.monotonic() + timeout
        pause = FIRST_POLL
        while True:
            response = self.get(feedback_id).response
            left = deadline - time.monotonic()
            if response is not None or left <= 0:
                return response
            with _ANSWERED:
                _ANSWERED.wait(min(pause, left))
            pause = min(pause * 1.5, LAST_POLL)


def _dumps(request: FeedbackRequest) -> str:
    data = request.to_json()
    data["created_at"] = request.created_at  # exact, for ordering; from_json reads both forms
    if request.response is not None and request.response.responded_at is not None:
        data["response"]["responded_at"] = request.response.responded_at
    return json.dumps(data)
