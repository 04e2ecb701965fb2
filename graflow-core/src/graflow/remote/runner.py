"""The remote side: run one :class:`TaskEnvelope` and describe what happened in a :class:`TaskOutcome`.

Used by the MULTIPROCESSING coordinator's child processes, by containers of the
Docker handler (``python -m graflow.remote.runner IN OUT``) and by Redis workers.
"""

from __future__ import annotations

import contextvars
import sys
import time
from typing import Any

from graflow.remote.envelope import TaskEnvelope, TaskOutcome, dumps, failure, loads, worker_name

__all__ = ["main", "run_envelope", "run_payload"]


def run_envelope(envelope: TaskEnvelope) -> TaskOutcome:
    """Run the envelope's task once, in a fresh :mod:`contextvars` context."""
    return contextvars.copy_context().run(_run, envelope)


def _run(envelope: TaskEnvelope) -> TaskOutcome:
    from graflow.channels.base import Channel
    from graflow.core.context import NO_DATA, ExecutionContext, TaskExecutionContext
    from graflow.core.graph import TaskGraph
    from graflow.core.task import _current_task
    from graflow.plugins.manager import get_plugin_manager
    from graflow.queue.memory import MemoryTaskQueue
    from graflow.remote.recording import RecordingChannel

    started = time.time()
    task = envelope.task
    recorder: RecordingChannel | None = None
    try:
        manager = get_plugin_manager()
        channel: Channel
        if envelope.channel_backend is not None:
            name, config = envelope.channel_backend
            channel = manager.resolve("graflow_channel_backends", name)(envelope.session_id, config)
        else:
            channel = recorder = RecordingChannel(envelope.session_id, envelope.channel_snapshot or {})
        graph = TaskGraph()
        graph.add_node(task)
        context = ExecutionContext(
            graph,
            start_nodes=[task.task_id],
            max_steps=1,
            channel=channel,
            queue=MemoryTaskQueue(),
            config={"max_cycles": envelope.max_cycles},
            session_id=envelope.session_id,
            workflow_name=envelope.workflow_name,
        )
        context.results.update(envelope.results)
        has_data, data = envelope.iteration
        tctx = TaskExecutionContext(task, context, envelope.cycle_count, data if has_data else NO_DATA)  # type: ignore[arg-type]
        tctx.retry_count = envelope.attempt - 1
        if envelope.carrier:
            manager.hook.graflow_extract_carrier(carrier=envelope.carrier)

        def call() -> Any:
            return task.run()  # type: ignore[attr-defined]

        # Set around the lifecycle wrappers as well, so they see the attempt's context
        # (cycle, requests); this whole function runs in a fresh contextvars context.
        _current_task.set(tctx)
        if manager.wraps("graflow_run_task"):
            result = manager.hook.graflow_run_task(
                task=task, context=context, attempt=envelope.attempt, run=call
            )
        else:
            result = call()
    except BaseException as exc:  # the outcome must describe every way a task can end
        return failure(task.task_id, exc, started, channel_ops=recorder.ops if recorder else [])
    return TaskOutcome(
        task.task_id,
        success=True,
        result=result,
        channel_ops=recorder.ops if recorder else [],
        next_tasks=list(tctx._next_tasks),
        iterate=tctx._iterate,
        iteration_data=tctx._iteration_payload,
        terminate=tctx._terminate,
        cancel=tctx._cancel,
        started_at=started,
        duration=time.time() - started,
        worker=worker_name(),
    )


def run_payload(payload: bytes) -> bytes:
    """Bytes in, bytes out: what crosses a process boundary.

    A result that cannot be pickled becomes a failure that says so, rather than an
    error the driver cannot explain.
    """
    outcome = run_envelope(loads(payload))
    try:
        return dumps(outcome)
    except Exception as exc:
        bad = TypeError(
            f"task {outcome.task_id!r} returned or requested something that cannot be pickled "
            f"({type(exc).__name__}: {exc}); return plain data (dicts, lists, numbers, strings)"
        )
        return dumps(failure(outcome.task_id, bad, outcome.started_at, channel_ops=[]))


def main(argv: list[str] | None = None) -> int:
    """``python -m graflow.remote.runner ENVELOPE_FILE OUTCOME_FILE``: run one envelope from disk."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m graflow.remote.runner ENVELOPE_FILE OUTCOME_FILE\n")
        return 2
    with open(args[0], "rb") as src:
        payload = src.read()
    with open(args[1], "wb") as dst:
        dst.write(run_payload(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
