"""Answering (SPEC 17), as one suite every feedback backend passes: checked answers, the first one stands.

:class:`FeedbackContract` holds the tests; a backend runs them by subclassing it with a
``manager`` fixture, a :class:`~graflow.hitl.FeedbackManager` over that backend (see
``tests/core/hitl/test_answers.py``; the Redis one is in ``tests/redis``).
"""

from __future__ import annotations

import threading
import time

import pytest

from graflow.hitl import (
    FeedbackAlreadyAnsweredError,
    FeedbackManager,
    FeedbackNotFoundError,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackType,
    InvalidFeedbackError,
)


class FeedbackContract:
    """The tests; subclasses provide ``manager``."""

    @staticmethod
    def ask(
        manager: FeedbackManager, kind: FeedbackType, options: list[str] | None = None
    ) -> FeedbackRequest:
        request = FeedbackRequest(
            feedback_id=f"q-{kind}",
            run_id="run-1",
            task_id="decide",
            feedback_type=kind,
            prompt="?",
            options=options,
        )
        stored, new = manager.backend.create(request)
        assert new
        return stored

    def test_a_selection_among_the_options_is_taken_with_who_answered_and_when(
        self, manager: FeedbackManager
    ) -> None:
        request = self.ask(manager, FeedbackType.SELECTION, ["staging", "prod"])
        before = time.time()

        answered = manager.provide_feedback(
            request.feedback_id, FeedbackResponse(selected="prod", responded_by="ana")
        )

        assert answered.response is not None
        assert answered.response.selected == "prod"
        assert answered.response.response_type == FeedbackType.SELECTION
        assert answered.response.responded_by == "ana"
        assert answered.response.responded_at is not None and answered.response.responded_at >= before - 1
        assert manager.get_request(request.feedback_id).response == answered.response
        assert manager.list_pending_requests() == []

    def test_a_selection_that_is_not_an_option_is_refused_and_the_request_stays_open(
        self,
        manager: FeedbackManager,
    ) -> None:
        request = self.ask(manager, FeedbackType.SELECTION, ["staging", "prod"])

        with pytest.raises(
            InvalidFeedbackError, match=r"'qa' is not one of its options \['staging', 'prod'\]"
        ):
            manager.provide_feedback(request.feedback_id, FeedbackResponse(selected="qa"))

        assert [r.feedback_id for r in manager.list_pending_requests()] == [request.feedback_id]
        assert manager.get_request(request.feedback_id).response is None

    @pytest.mark.parametrize(
        ("kind", "options", "wrong"),
        [
            (FeedbackType.APPROVAL, None, FeedbackResponse(response_type="text", text="yes")),
            (FeedbackType.TEXT, None, FeedbackResponse(approved=True)),
            (FeedbackType.SELECTION, ["a", "b"], FeedbackResponse(response_type="text", text="a")),
            (FeedbackType.MULTI_SELECTION, ["a", "b"], FeedbackResponse(selected_multiple=["a", "z"])),
            (FeedbackType.CUSTOM, None, FeedbackResponse(text="not an object")),
        ],
    )
    def test_an_answer_of_the_wrong_kind_is_refused(
        self, manager: FeedbackManager, kind: FeedbackType, options: list[str] | None, wrong: FeedbackResponse
    ) -> None:
        request = self.ask(manager, kind, options)

        with pytest.raises(InvalidFeedbackError, match="was refused"):
            manager.provide_feedback(request.feedback_id, wrong)

        assert manager.get_request(request.feedback_id).response is None

    def test_a_second_answer_is_refused_and_the_first_stands(self, manager: FeedbackManager) -> None:
        request = self.ask(manager, FeedbackType.APPROVAL)
        manager.provide_feedback(request.feedback_id, FeedbackResponse(approved=True, responded_by="ana"))

        with pytest.raises(
            FeedbackAlreadyAnsweredError, match="answered already by ana; the first answer stands"
        ):
            manager.provide_feedback(request.feedback_id, FeedbackResponse(approved=False, responded_by="bo"))

        answer = manager.get_request(request.feedback_id).response
        assert answer is not None and answer.approved is True and answer.responded_by == "ana"

    def test_an_answer_to_an_unknown_request_is_refused_saying_how_to_list_them(
        self, manager: FeedbackManager
    ) -> None:
        with pytest.raises(FeedbackNotFoundError, match="graflow feedback list"):
            manager.provide_feedback("nope", FeedbackResponse(approved=True))

    def test_every_kind_takes_its_own_field(self, manager: FeedbackManager) -> None:
        cases = [
            (FeedbackType.TEXT, None, FeedbackResponse(text="use March"), "text", "use March"),
            (
                FeedbackType.MULTI_SELECTION,
                ["a", "b", "c"],
                FeedbackResponse(selected_multiple=["a", "c"]),
                "selected_multiple",
                ["a", "c"],
            ),
            (FeedbackType.CUSTOM, None, FeedbackResponse(custom_data={"k": 1}), "custom_data", {"k": 1}),
            (
                FeedbackType.APPROVAL,
                None,
                FeedbackResponse(approved=False, reason="Friday"),
                "reason",
                "Friday",
            ),
        ]
        for kind, options, response, field, expected in cases:
            request = self.ask(manager, kind, options)
            answered = manager.provide_feedback(request.feedback_id, response)
            assert getattr(answered.response, field) == expected
            assert getattr(manager.get_request(request.feedback_id).response, field) == expected

    def test_pending_requests_are_listed_oldest_first_and_by_run(self, manager: FeedbackManager) -> None:
        for number, run in enumerate(["r1", "r2", "r1"]):
            manager.backend.create(
                FeedbackRequest(
                    f"q{number}", run, "t", FeedbackType.APPROVAL, "?", created_at=1000.0 + number
                )
            )

        assert [r.feedback_id for r in manager.list_pending_requests()] == ["q0", "q1", "q2"]
        assert [r.feedback_id for r in manager.list_pending_requests("r1")] == ["q0", "q2"]

    def test_a_request_made_twice_keeps_the_first_and_its_answer(self, manager: FeedbackManager) -> None:
        first = self.ask(manager, FeedbackType.APPROVAL)
        manager.provide_feedback(first.feedback_id, FeedbackResponse(approved=True))

        again, new = manager.backend.create(
            FeedbackRequest(first.feedback_id, "run-1", "decide", FeedbackType.APPROVAL, "asked again")
        )

        assert not new
        assert again.prompt == "?"
        assert again.response is not None and again.response.approved is True

    def test_request_and_answer_travel_as_json_and_back(self) -> None:
        request = FeedbackRequest(
            "q",
            "r",
            "t",
            FeedbackType.SELECTION,
            "Where?",
            options=["a", "b"],
            metadata={"n": 1},
            timeout=30.0,
        )
        request.response = FeedbackResponse(
            "q", "selection", selected="a", responded_by="ana", responded_at=1.7e9
        )

        back = FeedbackRequest.from_json(request.to_json())

        assert back.options == ["a", "b"] and back.metadata == {"n": 1} and back.timeout == 30.0
        assert back.feedback_type is FeedbackType.SELECTION
        assert (
            back.response is not None
            and back.response.selected == "a"
            and back.response.responded_at == 1.7e9
        )

    def test_a_waiter_gives_up_at_its_timeout_and_is_woken_by_an_answer(
        self, manager: FeedbackManager
    ) -> None:
        request = self.ask(manager, FeedbackType.APPROVAL)
        assert manager.backend.wait(request.feedback_id, 0.2) is None

        answer = FeedbackResponse(approved=True)
        threading.Timer(0.3, manager.provide_feedback, (request.feedback_id, answer)).start()
        started = time.monotonic()
        response = manager.backend.wait(request.feedback_id, 30.0)

        assert response is not None and response.approved is True
        assert time.monotonic() - started < 2.0
