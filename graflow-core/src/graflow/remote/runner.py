"""The remote side: run one :class:`TaskEnvelope` and describe what happened in a :class:`TaskOutcome`.

Used by the MULTIPROCESSING coordinator's pool processes, by containers of the Docker
handler (``python -m graflow.remote.runner IN OUT``) and by Redis workers. The attempt
goes through :func:`~graflow.core.attempt.run_attempt`, as it would in the engine, so
lifecycle wrappers see it the same way wherever it runs.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

from graflow.channels.recording import ChannelOp, RecordingChannel
from graflow.core.attempt import alarm, call_with_timeout, run_attempt
from graflow.core.context import NO_DATA, ExecutionContext, TaskExecutionContext, task_context
from graflow.exceptions import ConfigError
from graflow.plugins.manager import get_plugin_manager
from graflow.remote.codec import dumps_outcome, loads
from graflow.remote.envelope import TaskEnvelope, TaskOutcome, failure, worker_name
from graflow.state.memory import DETACHED

if TYPE_CHECKING:
    from graflow.channels.base import Channel
    from graflow.core.task import TaskWrapper
    from graflow.state.store import StateStore

__all__ = ["main", "run_envelope", "run_payload", "warm_up"]


def warm_up() -> None:
    """Load what running an envelope needs (the engine's modules, the plugins) ahead of the first one.

    A long-lived process that runs envelopes (a worker) calls it before it takes work;
    otherwise its first task pays tens of milliseconds of imports, and every run's first
    task on fresh workers shows it.
    """
    import graflow.core.run  # noqa: F401  # lazy: loaded here on purpose, ahead of the first task
    import graflow.core.task  # noqa: F401  # lazy: what an envelope's task unpickles into

    get_plugin_manager()


def run_envelope(envelope: TaskEnvelope) -> TaskOutcome:
    """Run the envelope's task once, in a fresh :mod:`contextvars` context."""
    return contextvars.copy_context().run(_run, envelope)


def _run(envelope: TaskEnvelope) -> TaskOutcome:
    started = time.time()
    task: TaskWrapper = envelope.task  # type: ignore[assignment]
    ops: list[ChannelOp] = []
    try:
        manager = get_plugin_manager()
        channel: Channel
        if envelope.channel_backend is not None:
            name, config = envelope.channel_backend
            channel = manager.resolve("graflow_channel_backends", name)(envelope.session_id, config)
        else:
            channel = RecordingChannel.over_snapshot(
                envelope.session_id, envelope.channel_snapshot or {}, ops
            )
        context = ExecutionContext.for_one_task(
            task,
            channel,
            session_id=envelope.session_id,
            workflow_name=envelope.workflow_name,
            max_cycles=envelope.max_cycles,
        )
        if envelope.results_store is not None:
            context.store = _store(envelope.results_store)
            context.results = _results(context.store, envelope.session_id)
        else:
            context.store = DETACHED
            context.results.update(envelope.results)
        has_data, data = envelope.iteration
        tctx = TaskExecutionContext(task, context, envelope.cycle_count, data if has_data else NO_DATA)
        tctx.retry_count = envelope.attempt - 1
        if envelope.carrier:
            manager.hook.graflow_extract_carrier(carrier=envelope.carrier)

        def call() -> Any:
            if task.timeout is None or task.is_async:  # an async task's coroutine is cancelled by itself
                return task.run()
            if threading.current_thread() is threading.main_thread():
                with alarm(task.task_id, task.timeout):  # a pool process, a container: stop it
                    return task.run()
            return call_with_timeout(task.run, tctx, task.timeout)  # a worker's thread: abandon it

        # Set around the lifecycle wrappers as well, so they see the attempt's context
        # (cycle, requests); this whole function runs in a fresh contextvars context.
        task_context.set(tctx)
        wrappers = manager if manager.wraps("graflow_run_task") else None
        result = run_attempt(task, context, envelope.attempt, call, wrappers)
    except BaseException as exc:  # the outcome must describe every way a task can end
        return failure(task.task_id, exc, started, channel_ops=ops)
    return TaskOutcome(
        task.task_id,
        success=True,
        result=result,
        channel_ops=ops,
        requests=tctx.requests,
        started_at=started,
        duration=time.time() - started,
        worker=worker_name(),
    )


#: Stores this process opened for the envelopes it ran, by spec: opening one per task would
#: cost a connection (and, for a local store, a schema check) every time.
_stores: dict[str, StateStore] = {}
_stores_lock = threading.Lock()
#: How many stores a long-lived process (a worker serving many key prefixes) keeps open.
_STORES_KEPT: Final = 16


def _store(spec: tuple[str, dict[str, Any]]) -> StateStore:
    """The run's state store, as its envelope names it (opened once per process)."""
    name, config = spec
    key = f"{os.getpid()}|{name}|{sorted(config.items())!r}"  # a forked child opens its own
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = get_plugin_manager().resolve("graflow_state_stores", name)(config)
            if len(_stores) >= _STORES_KEPT:
                _stores.pop(next(iter(_stores)))  # the oldest; its connections close with it
            _stores[key] = store
        return store


def _results(store: StateStore, run_id: str) -> MutableMapping[str, Any]:
    """The run's results, read from its store when the task asks for one."""
    view = store.results_view(run_id)
    if view is None:
        raise ConfigError(f"{store.where} names itself for remote reads but offers no results view")
    return view


def run_payload(payload: bytes) -> bytes:
    """Bytes in, bytes out: what crosses a process boundary (see :func:`~graflow.remote.codec.dumps_outcome`)."""
    return dumps_outcome(run_envelope(loads(payload)))


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
