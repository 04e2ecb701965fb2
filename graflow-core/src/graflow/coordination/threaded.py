"""``CoordinationBackend.THREADING``: members on a bounded set of threads."""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from graflow.coordination.coordinator import Coordinator, MemberRunner, timed_out
from graflow.core.handler import TaskResult
from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import ParallelGroup
    from graflow.remote.executor import RemoteExecutor

__all__ = ["DEFAULT_MAX_WORKERS", "ThreadingCoordinator", "default_workers", "run_in_threads"]

#: Threads are cheap to park but not to schedule on a small machine; members beyond this
#: wait for a free thread unless the group sets ``max_workers``.
DEFAULT_MAX_WORKERS = 32


def run_in_threads(
    group: ParallelGroup,
    run_member: MemberRunner,
    workers: int,
    executor: RemoteExecutor | None = None,
) -> tuple[list[TaskResult], bool]:
    """Run every member's branch on one of up to ``workers`` threads; ``(outcomes, any_timed_out)``.

    Each member runs in its own copy of the caller's :mod:`contextvars` context, so
    tracing and logging context flow into it. A member still running (or not yet
    started) when the group's timeout expires is reported as failed; a running one is
    left to finish on its own (Python cannot stop a thread) and the run goes on.

    The threads are daemons started for this group, not a :mod:`concurrent.futures`
    pool: a pool's threads are joined when the interpreter exits, so one hung member
    would keep the whole program from exiting after its run has finished. Members are
    handed out by a shared counter, so a member costs no queue, future or lock.

    Threads are started one after another until the bound is reached or every member
    has been taken. Starting a thread needs the GIL: while members block (I/O, sleep,
    processes) the next thread starts at once, while they compute it waits, so short
    CPU-bound members are served by a few threads instead of paying for ``workers``.
    """
    members = group.members
    count = len(members)
    outcomes: list[TaskResult | None] = [None] * count
    errors: dict[int, BaseException] = {}
    indices = itertools.count()
    parent = contextvars.copy_context()
    stop = threading.Event()
    taken = threading.Event()
    done = threading.Event()
    # Threads still running, plus one share held by this thread until it stops starting them.
    live = [1]
    live_lock = threading.Lock()

    def leave() -> None:
        with live_lock:
            live[0] -= 1
            if live[0] == 0:
                done.set()

    def work() -> None:
        try:
            for index in indices:  # next() on a shared count is atomic under the GIL
                if index >= count:
                    taken.set()
                    return
                if stop.is_set():
                    return
                try:
                    outcomes[index] = parent.copy().run(run_member, members[index], executor)
                except BaseException as exc:  # cancel, max_steps, KeyboardInterrupt: re-raised below
                    errors[index] = exc
                    stop.set()
        finally:
            leave()

    deadline = None if group.timeout is None else time.monotonic() + group.timeout
    name = f"graflow-{group.task_id}"
    for number in range(max(1, min(workers, count))):
        if taken.is_set() or stop.is_set():
            break
        with live_lock:
            live[0] += 1
        threading.Thread(target=work, name=f"{name}-{number}", daemon=True).start()
    leave()
    done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
    stop.set()
    if errors:
        raise errors[min(errors)]
    settled = list(outcomes)  # members still running keep writing to ``outcomes``
    results = [
        outcome if outcome is not None else timed_out(member, group.timeout or 0.0)
        for outcome, member in zip(settled, members, strict=True)
    ]
    return results, None in settled


class ThreadingCoordinator(Coordinator):
    """Members run concurrently on up to ``max_workers`` threads (default: one per member, at most 32;
    every member at once when they are all async tasks)."""

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        outcomes, _ = run_in_threads(group, run_member, group.max_workers or default_workers(group))
        return outcomes


def default_workers(group: ParallelGroup) -> int:
    """Threads for a group that does not set ``max_workers``.

    Members of async tasks spend their time awaiting on the run's event loop, and a
    thread only waits for them there: all of them run at once. Others get at most
    :data:`DEFAULT_MAX_WORKERS`.
    """
    tasks = [t for member in group.members for t in member.elements]
    if tasks and all(getattr(t, "is_async", False) for t in tasks):
        return len(group.members)
    return DEFAULT_MAX_WORKERS


def _threading_coordinator() -> Coordinator:
    return ThreadingCoordinator()


@hookimpl
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    return {"threading": _threading_coordinator}
