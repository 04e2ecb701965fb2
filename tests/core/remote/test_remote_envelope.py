"""The remote-execution envelope: how an outcome is applied to the run it came back to.

What comes back from every executor (results, errors, requests, channel writes) is the
executor contract's subject (``tests/core/remote/contract.py``). These run envelopes
through the same function a child process, a container or a worker uses
(``run_payload``), in this process, and check what the engine then does with the outcome.
"""

from __future__ import annotations

import pytest

from graflow import CoordinationBackend, ErrorHandlingPolicy, task, workflow
from graflow.coordination.coordinator import Coordinator
from graflow.core.context import ExecutionContext
from graflow.core.graph import TaskGraph
from graflow.core.task import TaskWrapper
from graflow.exceptions import ExecutorUnavailableError
from graflow.plugins import get_plugin_manager, hookimpl
from graflow.remote.codec import dumps, loads
from graflow.remote.envelope import TaskEnvelope, apply_outcome
from graflow.remote.runner import run_payload


def _run_remote(task: TaskWrapper, snapshot: dict | None = None):
    envelope = TaskEnvelope(task, "session", "wf", channel_snapshot=snapshot or {})
    return loads(run_payload(dumps(envelope)))


def _context_for(*tasks: TaskWrapper) -> ExecutionContext:
    graph = TaskGraph()
    for t in tasks:
        graph.add_node(t)
    return ExecutionContext.create(graph)


def test_channel_writes_are_replayed_in_order_as_operations_not_values() -> None:
    @task(inject_context=True)
    def writer(ctx) -> None:
        channel = ctx.get_channel()
        channel.set("k", 1)
        channel.append("log", "a")
        channel.atomic_add("n", 2)
        channel.delete("k")

    outcome = _run_remote(writer)
    context = _context_for(writer)
    context.channel.set("n", 40)  # another member added meanwhile: the remote add composes
    context.channel.set("log", ["before"])
    apply_outcome(outcome, context, None)
    assert context.channel.get("n") == 42
    assert context.channel.get("log") == ["before", "a"]
    assert not context.channel.exists("k")


def test_a_multiprocessing_member_can_send_control_back_to_an_existing_task() -> None:
    with workflow("remote_goto") as wf:

        @task(inject_context=True)
        def counter(ctx) -> int:
            return int(ctx.get_channel().atomic_add("visits", 1))

        @task(inject_context=True)
        def member(ctx) -> str:
            ctx.next_task(counter)  # a copy of the graph's own task comes back from the child
            return "member"

        @task
        def other() -> str:
            return "other"

        group = (member | other).with_execution(
            backend=CoordinationBackend.MULTIPROCESSING, policy=ErrorHandlingPolicy.STRICT
        )
        counter >> group
        _, ctx = wf.execute(ret_context=True)

    assert ctx.channel.get("visits") == 2
    assert ctx.cycle_counts["counter"] == 2


class _BrokenExecutor:
    def execute(self, envelope: TaskEnvelope):
        raise ExecutorUnavailableError(f"nothing can run {envelope.task_id!r}")


class _BrokenCoordinator(Coordinator):
    def run_members(self, group, run_member, context):
        return [run_member(member, _BrokenExecutor()) for member in group.members]


class _BrokenBackendPlugin:
    @hookimpl
    def graflow_coordinators(self):
        return {"broken": _BrokenCoordinator}


def test_an_unavailable_executor_stops_the_run_instead_of_counting_as_member_failures() -> None:
    manager = get_plugin_manager()
    manager.register(_BrokenBackendPlugin(), name="test-broken-backend")
    try:
        with workflow("broken_backend") as wf:

            @task
            def a() -> int:
                return 1

            @task
            def b() -> int:
                return 2

            (a | b).with_execution(backend="broken", policy=ErrorHandlingPolicy.BEST_EFFORT)
            with pytest.raises(ExecutorUnavailableError, match="nothing can run"):
                wf.execute()
    finally:
        manager.unregister("test-broken-backend")
