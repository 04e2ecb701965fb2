"""The remote executor contract, as one suite every place that runs envelopes must pass.

A :class:`~graflow.remote.executor.RemoteExecutor` takes a
:class:`~graflow.remote.envelope.TaskEnvelope` and returns its
:class:`~graflow.remote.envelope.TaskOutcome`, and never raises for the task's own
failure. :class:`ExecutorContract` holds the tests; an executor runs them by subclassing
it and providing an ``executor`` fixture (see ``tests/core/coordination/test_pool_executor.py``).
The Redis suite, whose workers reach a shared channel, also provides ``shared_channel``::

    class TestFleetExecutor(ExecutorContract):
        @pytest.fixture
        def executor(self, make_queue, thread_worker):
            return make_queue().executor

The tasks are defined in this module, which the codec counts as the user's own code: it
travels by value, as a user's script does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from graflow.channels.base import Channel
from graflow.core.context import TaskExecutionContext
from graflow.core.task import TaskWrapper
from graflow.remote.envelope import RemoteTaskError, TaskEnvelope
from graflow.remote.executor import RemoteExecutor

__all__ = ["ExecutorContract", "envelope"]

#: The run id of the envelopes here, unless a test needs the id of a channel.
SESSION = "executor-contract"
#: Read by :func:`greet` where it runs; a test changes it after import.
GREETING = "as imported"


def envelope(
    func: Callable[..., Any], task_id: str = "job", *, inject_context: bool = False, **fields: Any
) -> TaskEnvelope:
    """An envelope for ``func`` as task ``task_id``; ``fields`` are the envelope's other fields."""
    fields.setdefault("session_id", SESSION)
    task = TaskWrapper(task_id, func, inject_context=inject_context, register=False)
    return TaskEnvelope(task, workflow_name="contract", **fields)


class NeedsTwoArguments(Exception):
    """Pickles, but cannot be unpickled: its ``__init__`` takes other arguments than its ``args``."""

    def __init__(self, sku: str, store: str) -> None:
        super().__init__(f"{sku} is sold out at {store}")


class HoldsALock(Exception):
    """Cannot be pickled at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_needs_two_arguments() -> None:
    raise NeedsTwoArguments("sku-1", "paris")


def raise_holds_a_lock() -> None:
    raise HoldsALock("held a lock")


def greet() -> str:
    return GREETING


class ExecutorContract:
    """What every remote executor does. Subclasses provide the ``executor`` fixture."""

    @pytest.fixture
    def shared_channel(self) -> Channel:
        """A channel the executor's side can reach itself (``remote_spec()`` is not ``None``)."""
        pytest.skip(
            "no shared channel backend here: memory channels travel as snapshots (tests/redis has one)"
        )

    # --- results and failures ---------------------------------------------------------------

    def test_a_successful_task_comes_back_with_its_result_and_the_worker_that_ran_it(
        self, executor: RemoteExecutor
    ) -> None:
        outcome = executor.execute(envelope(lambda: {"answer": 42, "items": [1, 2]}, "compute"))

        assert (outcome.task_id, outcome.success, outcome.result) == (
            "compute",
            True,
            {"answer": 42, "items": [1, 2]},
        )
        assert outcome.error is None
        host, _, pid = outcome.worker.rpartition(":")
        assert host and pid.isdigit(), f"worker should be host:pid, got {outcome.worker!r}"
        assert outcome.duration >= 0.0

    def test_a_failing_task_comes_back_as_a_failed_outcome_instead_of_raising(
        self, executor: RemoteExecutor
    ) -> None:
        def lookup() -> None:
            raise KeyError("missing sku")

        outcome = executor.execute(envelope(lookup, "lookup"))

        assert (outcome.task_id, outcome.success, outcome.result) == ("lookup", False, None)
        assert outcome.error_type == "KeyError"
        assert outcome.error_message == "'missing sku'"
        assert "in lookup" in (outcome.remote_traceback or "")
        with pytest.raises(KeyError) as raised:
            outcome.raise_error()
        assert raised.value.args == ("missing sku",), "the original type, rebuilt here"
        [note] = raised.value.__notes__
        assert note.startswith(f"remote traceback ({outcome.worker}):")
        assert "in lookup" in note

    def test_a_task_that_exits_its_interpreter_still_comes_back_as_a_failed_outcome(
        self, executor: RemoteExecutor
    ) -> None:
        outcome = executor.execute(envelope(lambda: sys.exit(3), "quitter"))

        assert not outcome.success
        assert outcome.error_type == "SystemExit"
        with pytest.raises(SystemExit):
            outcome.raise_error()

    @pytest.mark.parametrize(
        ("raiser", "error_type", "message"),
        [
            pytest.param(
                raise_needs_two_arguments, "NeedsTwoArguments", "sku-1 is sold out at paris", id="unpicklable"
            ),
            pytest.param(raise_holds_a_lock, "HoldsALock", "held a lock", id="unpicklable_state"),
        ],
    )
    def test_an_exception_that_cannot_be_rebuilt_here_comes_back_as_remote_task_error(
        self, executor: RemoteExecutor, raiser: Callable[[], None], error_type: str, message: str
    ) -> None:
        outcome = executor.execute(envelope(raiser, "sell"))

        assert not outcome.success
        assert outcome.error is None, "the exception itself could not travel"
        with pytest.raises(RemoteTaskError) as raised:
            outcome.raise_error()
        error = raised.value
        assert (error.task_id, error.error_type) == ("sell", error_type)
        assert str(error) == f"{error_type}: {message}"
        assert raiser.__name__ in error.remote_traceback

    def test_a_result_that_cannot_be_pickled_comes_back_as_a_failure_saying_it_cannot_be_sent_back(
        self, executor: RemoteExecutor
    ) -> None:
        outcome = executor.execute(envelope(threading.Lock, "lock_maker"))

        assert not outcome.success
        assert outcome.task_id == "lock_maker"
        assert outcome.error_type == "TypeError"
        message = outcome.error_message or ""
        assert "task 'lock_maker' returned or requested something that cannot be sent back" in message
        assert "cannot be pickled" in message
        assert "return plain data" in message

    # --- what the task sees and asks for ------------------------------------------------------

    def test_the_task_sees_the_channel_results_and_iteration_it_was_sent(
        self, executor: RemoteExecutor
    ) -> None:
        def read(ctx: TaskExecutionContext, data: Any = None) -> tuple[Any, ...]:
            return (
                ctx.get_channel().get("city"),
                ctx.get_result("earlier"),
                data,
                ctx.cycle_count,
                ctx.retry_count,
            )

        outcome = executor.execute(
            envelope(
                read,
                "reader",
                inject_context=True,
                channel_snapshot={"city": "Paris"},
                results={"earlier": 7},
                iteration=(True, {"page": 2}),
                cycle_count=3,
                attempt=2,
            )
        )

        assert outcome.result == ("Paris", 7, {"page": 2}, 3, 1)

    def test_next_task_requests_come_back_in_the_outcome(self, executor: RemoteExecutor) -> None:
        def branch(ctx: TaskExecutionContext) -> str:
            ctx.next_task(TaskWrapper("audit", lambda: "audited", register=False))
            ctx.next_task(TaskWrapper("escalate", lambda: "escalated", register=False), goto=True)
            return "branched"

        outcome = executor.execute(envelope(branch, "branch", inject_context=True))

        assert outcome.result == "branched"
        assert outcome.requests is not None
        assert [(task.task_id, goto) for task, goto in outcome.requests.next_tasks] == [
            ("audit", False),
            ("escalate", True),
        ]
        assert outcome.requests.goto
        assert outcome.requests.next_tasks[1][0].run() == "escalated", "the added task travels back whole"

    def test_next_iteration_requests_come_back_with_their_data(self, executor: RemoteExecutor) -> None:
        outcome = executor.execute(
            envelope(lambda ctx: ctx.next_iteration({"page": 3}), "pager", inject_context=True)
        )

        assert outcome.requests is not None
        assert (outcome.requests.iterate, outcome.requests.iteration_data) == (True, {"page": 3})

    @pytest.mark.parametrize(
        ("method", "field"), [("terminate_workflow", "terminate"), ("cancel_workflow", "cancel")]
    )
    def test_terminate_and_cancel_requests_come_back_in_the_outcome(
        self, executor: RemoteExecutor, method: str, field: str
    ) -> None:
        outcome = executor.execute(
            envelope(lambda ctx: getattr(ctx, method)("stock is gone"), "stopper", inject_context=True)
        )

        assert outcome.success, "asking to stop is not a failure"
        assert outcome.requests is not None
        assert getattr(outcome.requests, field) == "stock is gone"

    # --- channel writes --------------------------------------------------------------------------

    def test_writes_to_a_channel_snapshot_come_back_as_ordered_channel_ops(
        self, executor: RemoteExecutor
    ) -> None:
        def write(ctx: TaskExecutionContext) -> Any:
            channel = ctx.get_channel()
            channel.set("status", "running")
            channel.append("log", "started")
            channel.atomic_add("count", 2)
            channel.delete("status")
            return channel.get("count")

        outcome = executor.execute(
            envelope(write, "writer", inject_context=True, channel_snapshot={"count": 40, "log": ["before"]})
        )

        assert outcome.result == 42, "the task reads its own writes"
        assert outcome.channel_ops == [
            ("set", ("status", "running", None)),
            ("append", ("log", "started")),
            ("atomic_add", ("count", 2)),
            ("delete", ("status",)),
        ]

    def test_writes_to_a_shared_channel_go_straight_to_it(
        self, executor: RemoteExecutor, shared_channel: Channel
    ) -> None:
        def write(ctx: TaskExecutionContext) -> None:
            channel = ctx.get_channel()
            channel.append("log", "remote")
            channel.atomic_add("count", 2)

        shared_channel.set("count", 40)
        outcome = executor.execute(
            envelope(
                write,
                "writer",
                inject_context=True,
                session_id=shared_channel.name,
                channel_backend=shared_channel.remote_spec(),
            )
        )

        assert outcome.success, outcome.remote_traceback
        assert outcome.channel_ops == [], "nothing to replay: the writes are already there"
        assert (shared_channel.get("log"), shared_channel.get("count")) == (["remote"], 42)

    # --- code and concurrency -------------------------------------------------------------------

    def test_closures_lambdas_and_functions_of_the_callers_module_travel_by_value(
        self, executor: RemoteExecutor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sys.modules[__name__], "GREETING", "changed after import")
        rate = 1.5

        def closure() -> float:
            return rate * 2

        results = [
            executor.execute(envelope(func, task_id)).result
            for task_id, func in [
                ("closure", closure),
                ("lambda", lambda: rate * 4),
                ("module_function", greet),
            ]
        ]

        assert results == [3.0, 6.0, "changed after import"]

    def test_concurrent_calls_from_several_threads_each_get_their_own_outcome(
        self, executor: RemoteExecutor
    ) -> None:
        def square(n: int) -> TaskEnvelope:
            def body() -> int:
                time.sleep(0.02)  # long enough for the calls to overlap
                return n * n

            return envelope(body, f"square_{n}")

        with ThreadPoolExecutor(8) as threads:
            outcomes = list(threads.map(lambda n: executor.execute(square(n)), range(16)))

        assert [(o.task_id, o.result) for o in outcomes] == [(f"square_{n}", n * n) for n in range(16)]
