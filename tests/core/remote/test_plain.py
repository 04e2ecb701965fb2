"""An outcome as plain data (:mod:`graflow.remote.plain`): JSON both ways, and nothing else accepted."""

from __future__ import annotations

import enum
import json
import pickle
import time
from typing import Any

import pytest

from graflow.core.requests import TaskRequests
from graflow.core.task import TaskWrapper
from graflow.remote.envelope import RemoteTaskError, TaskOutcome, failure
from graflow.remote.plain import MAX_DEPTH, InvalidOutcomeError, dumps_plain_outcome, loads_plain_outcome

FOLLOW_UP = TaskWrapper("follow_up", lambda: None)
GRAPH = {"follow_up": FOLLOW_UP}


def load(data: bytes, task_id: str = "t") -> TaskOutcome:
    return loads_plain_outcome(data, task_id=task_id, find_task=GRAPH.get)


def wire(**changes: Any) -> bytes:
    """A valid plain outcome of task 't', with some fields replaced."""
    fields = json.loads(dumps_plain_outcome(TaskOutcome("t", success=True, result=1, worker="w")))
    fields.update(changes)
    return json.dumps(fields).encode()


def test_an_outcome_comes_back_with_its_result_channel_writes_and_requests() -> None:
    requests = TaskRequests()
    requests.add_next(TaskWrapper("follow_up", lambda: "a copy, as a container has it"), goto=True)
    requests.iterate, requests.iteration_data = True, {"seen": [1, 2]}
    requests.terminate = "enough"
    requests.checkpoint = (None, {"stage": "loaded"})
    ops = [("set", ("k", {"a": [1, 2.5, None, True]}, None)), ("atomic_add", ("n", 2)), ("clear", ())]
    outcome = TaskOutcome(
        "t", True, result={"rows": [[1, "x"]]}, channel_ops=ops, requests=requests, worker="w"
    )

    back = load(dumps_plain_outcome(outcome))

    assert back.success and back.result == {"rows": [[1, "x"]]} and back.worker == "w"
    assert back.channel_ops == ops
    assert back.requests is not None
    assert back.requests.next_tasks == [(FOLLOW_UP, True)]  # the graph's own task, found by id
    assert back.requests.goto and back.requests.iterate
    assert back.requests.iteration_data == {"seen": [1, 2]}
    assert back.requests.terminate == "enough"
    assert back.requests.checkpoint == (None, {"stage": "loaded"})


def test_a_failure_comes_back_as_remote_task_error_with_type_message_and_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        sent = failure("t", exc, time.time(), channel_ops=[("append", ("log", "tried"))])

    back = load(dumps_plain_outcome(sent))

    assert back.error is None and back.channel_ops == [("append", ("log", "tried"))]
    with pytest.raises(RemoteTaskError, match="KeyError: 'missing'") as info:
        back.raise_error()
    assert info.value.error_type == "KeyError"
    assert "raise KeyError" in info.value.remote_traceback
    assert "remote traceback" in "\n".join(info.value.__notes__)


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("result", "named"),
    [
        ((1, 2), "its result is of type tuple"),
        ({"rows": [1, {2, 3}]}, "its result['rows'][1] is of type set"),
        ({1: "one"}, "its result is a dict with the int key 1"),
        (b"bytes", "its result is of type bytes"),
        ([Colour.RED], f"its result[0] is of type {__name__}.Colour"),  # no silent conversion to 1
        (object(), "its result is of type object"),
    ],
)
def test_a_result_that_is_not_json_data_fails_the_task_naming_the_value(result: object, named: str) -> None:
    back = load(dumps_plain_outcome(TaskOutcome("t", True, result=result)))

    assert not back.success and back.error_type == "TypeError"
    assert f"task 't' returned or requested something that cannot leave a sandbox: {named}" in str(
        back.error_message
    )
    assert "convert it in the task" in str(back.error_message)


def test_channel_values_and_next_iteration_data_must_be_json_data_too() -> None:
    writes = TaskOutcome("t", True, channel_ops=[("set", ("k", "fine", None)), ("append", ("log", (1,)))])
    assert "the value of channel write 1 (append 'log') is of type tuple" in str(
        load(dumps_plain_outcome(writes)).error_message
    )
    iterating = TaskRequests(iterate=True, iteration_data={"next": {"seen"}})
    back = load(dumps_plain_outcome(TaskOutcome("t", True, requests=iterating)))
    assert "its next_iteration data['next'] is of type set" in str(back.error_message)
    assert back.channel_ops == [] and back.requests is None  # a failure applies nothing of it


def test_data_nested_past_the_limit_fails_the_task() -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    back = load(dumps_plain_outcome(TaskOutcome("t", True, result=deep)))
    assert f"nested more than {MAX_DEPTH} levels deep" in str(back.error_message)


def test_a_checkpoint_path_is_refused_as_it_would_choose_a_file_outside() -> None:
    requests = TaskRequests(checkpoint=("/etc/cron.d/job", {}))
    back = load(dumps_plain_outcome(TaskOutcome("t", True, requests=requests)))
    assert "checkpoint(path='/etc/cron.d/job')" in str(back.error_message)
    assert "call checkpoint() without a path" in str(back.error_message)


def test_next_task_of_a_task_outside_the_graph_is_refused_with_what_to_do() -> None:
    requests = TaskRequests()
    requests.add_next(TaskWrapper("brand_new", lambda: None), goto=False)
    with pytest.raises(InvalidOutcomeError) as info:
        load(dumps_plain_outcome(TaskOutcome("t", True, requests=requests)))
    message = str(info.value)
    assert "asks for 'brand_new', which is not a task of this workflow" in message
    assert "Add 'brand_new' to the workflow beforehand" in message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (pickle.dumps(TaskOutcome("t", True)), "it is not JSON"),
        (b"\xff\xfe garbage", "it is not JSON"),
        (b'{"task_id": "t"', "it is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests more than"),
        (b"1" * 5000, "it is not JSON"),
        (b"[]", "the outcome must be a JSON object, got array"),
        (b'{"task_id": "t"}', "the outcome has the wrong fields: missing 'channel_ops'"),
        (wire(extra=1), "the outcome has the wrong fields: unknown 'extra'"),
        (wire(task_id="other"), "it is the outcome of 'other', not of 't'"),
        (wire(success="yes"), "success must be a JSON boolean, got string"),
        (wire(worker=None), "worker must be a JSON string, got null"),
        (wire(started_at=True), "started_at must be a finite number, got boolean"),
        (wire(duration=float("nan")), "duration must be a finite number"),
        (wire(channel_ops={}), "channel_ops must be a JSON array, got object"),
        (wire(channel_ops=[["__class__", []]]), "channel_ops[0]: '__class__' is not a channel write"),
        (wire(channel_ops=[["set", ["k"]]]), "channel_ops[0]: set takes 3 arguments, got 1"),
        (wire(channel_ops=[["delete", [1]]]), "channel_ops[0][1][0] must be a JSON string, got the number 1"),
        (wire(channel_ops=[["atomic_add", ["n", True]]]), "channel_ops[0][1][1] must be a finite number"),
        (wire(channel_ops=[["set", ["k", 1, "soon"]]]), "channel_ops[0][1][2] must be a finite number"),
        (wire(error={"type": "E", "message": "", "traceback": ""}), "it succeeded and carries an error"),
        (wire(success=False, error={"type": "E"}), "error has the wrong fields: missing 'message'"),
        (wire(success=False, error={"type": 1, "message": "", "traceback": ""}), "error.type must be"),
        (wire(requests={"next_tasks": []}), "requests has the wrong fields"),
        (
            wire(result=json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))),
            "result" + "[0]" * MAX_DEPTH,
        ),
    ],
)
def test_anything_but_a_valid_plain_outcome_is_refused_saying_what_was_wrong(
    data: bytes, reason: str
) -> None:
    with pytest.raises(InvalidOutcomeError) as info:
        load(data)
    assert reason in str(info.value)


def test_requests_are_checked_field_by_field() -> None:
    requests = {
        "next_tasks": [{"task_id": "follow_up", "goto": "yes"}],
        "iterate": False,
        "iteration_data": None,
        "terminate": None,
        "cancel": None,
        "checkpoint": {"metadata": {}, "path": "/etc/passwd"},
    }
    with pytest.raises(InvalidOutcomeError, match=r"requests.next_tasks\[0\].goto must be a JSON boolean"):
        load(wire(requests=requests))
    requests["next_tasks"] = []
    with pytest.raises(InvalidOutcomeError, match="requests.checkpoint has the wrong fields: unknown 'path'"):
        load(wire(requests=requests))
