"""``ProcessPool``: a worker's tasks run in child processes (``graflow-worker --pool processes``).

Threads share one interpreter lock, so pure-Python tasks on a thread pool use one core
however many threads run them. This pool keeps everything of the worker in the worker
process (fetching, heartbeats and keep-alives, completing outcomes, counters) and moves
only the running of an envelope to a child: each of the ``size`` pool threads takes a
delivery as in :class:`~graflow_worker.pool.TaskPool`, hands its envelope as bytes to an
idle :class:`~graflow_worker.child.Child` and waits for the outcome's bytes.

Why this mechanism rather than :class:`concurrent.futures.ProcessPoolExecutor` or
:class:`multiprocessing.pool.Pool`:

* a child that dies must cost exactly its own task. ``ProcessPoolExecutor`` declares the
  whole pool broken and fails every call in flight; ``Pool`` replaces the process but never
  answers for its task. Here
  the pool thread sees the pipe close, hands that one delivery back to the queue (the next
  fetch of any worker takes it, with ``attempt`` + 1; ``max_deliveries`` bounds a task
  that always kills its process) and starts a replacement;
* one child per slot, so the worker's :class:`~graflow_worker.slots.Slots` stay the only
  measure of capacity and no second queue sits between the fetcher and the children;
* a drain that times out can stop what still runs: the deliveries were handed back, so
  their children are killed rather than left running as abandoned threads would be.

The bytes a child gets are the delivery's envelope encoded again, not the entry's payload
as it came from Redis: the worker decodes every entry anyway (it verifies the seal and reads
the step and routing) and points the task's channel and store at its own client and sealer,
so what the child runs is exactly what a pool thread would. Encoding it again costs about
40 µs for a 1.3 kB envelope, and the entry's format stays graflow-redis's business.

Children come from :mod:`multiprocessing`'s ``forkserver`` (``spawn`` where there is none):
never a ``fork`` of the worker, whose threads may hold locks at that moment. The fork
server imports Graflow and its plugins once (:mod:`graflow_worker._preload`), so a child
answers its first envelope about 15 ms after it is asked for (the server's own start, once,
takes about 0.2 s), which keeps ``max_tasks_per_child`` recycling cheap; an envelope's round
trip through the pipe costs about 0.2 ms. A child learns
the worker's Redis clients and sealers once, at start (:mod:`graflow_redis.handover`), so a
task's channel and results are signed and verified as they would be on a pool thread.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.util import Finalize
from typing import TYPE_CHECKING, Final

from graflow.remote.codec import ByValue, dumps_envelope, loads
from graflow_redis.handover import Handover, handover
from graflow_worker.child import Child, ChildError, ChildLost
from graflow_worker.pool import TaskPool

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from structlog.typing import FilteringBoundLogger

    from graflow.remote.envelope import TaskOutcome
    from graflow_redis.consumer import Delivery
    from graflow_worker.completer import Completer
    from graflow_worker.gate import LimitGate
    from graflow_worker.observer import Notifier
    from graflow_worker.slots import Slots

__all__ = ["ProcessPool"]

#: What the fork server imports before it forks children.
_PRELOAD: Final = "graflow_worker._preload"
#: Seconds a pool thread waits after failing to start a child, before its slot is free again.
RESPAWN_PAUSE: Final = 1.0


class ProcessPool(TaskPool):
    """``size`` pool threads, each running its task in one of ``size`` child processes."""

    def __init__(
        self,
        size: int,
        *,
        max_tasks_per_child: int | None,
        child_setup: Callable[[], object] | None = None,
        release: Callable[[Delivery, str], None],
        completer: Completer,
        slots: Slots,
        notifier: Notifier,
        log: FilteringBoundLogger,
        gate: LimitGate | None = None,
    ) -> None:
        super().__init__(size, completer=completer, slots=slots, notifier=notifier, log=log, gate=gate)
        #: Envelopes a child runs before it is replaced by a fresh one (``None``: no limit).
        self.max_tasks_per_child = max_tasks_per_child
        #: Called in each child before its first task (picklable: it travels to the child).
        self.child_setup = child_setup
        self._release = release
        self._context = _context()
        #: Children waiting for an envelope, one per pool thread that is not running one
        #: (``None``: a child that could not be started yet; the next task tries again).
        self._idle: queue.SimpleQueue[Child | None] = queue.SimpleQueue()
        self._children: set[Child] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._handover: Handover | None = None
        self._names = itertools.count()
        # Pool processes share the worker's installed packages; the user's code came by value
        # and goes on by value.
        self._by_value = ByValue("a pool process")

    def start(self) -> None:
        self._handover = handover()
        # Children are not daemons (their tasks may start processes), so multiprocessing
        # would wait for them at exit: a worker that was never stopped kills them first.
        Finalize(self, _kill_all, args=(self._children, self._lock), exitpriority=10)
        for _ in range(self.size):
            self._idle.put(self._spawn())
        super().start()

    def shutdown(self) -> None:
        """Stop the threads and end every child now.

        The worker calls this once running tasks finished or were handed back, so a child
        still busy runs a task that is no longer this worker's.
        """
        self._closing = True
        super().shutdown()
        _kill_all(self._children, self._lock)

    def join(self, timeout: float) -> None:
        super().join(timeout)
        with self._lock:
            children = list(self._children)
            self._children.clear()
        for child in children:  # idle ones: the threads that could read their pipes are gone
            child.process.join(timeout)
            child.close()

    def _outcome(self, delivery: Delivery) -> TaskOutcome | None:
        payload = dumps_envelope(delivery.envelope, self._by_value)
        child = self._idle.get() or self._respawn(delivery)
        if child is None:
            return None
        try:
            answer = child.run(payload)
        except ChildLost as lost:
            child.kill()  # it is dead, or its pipe is: either way it serves no more
            self._replace(child)
            if not self._closing:  # at shutdown the worker has handed it back already
                self._log.warning(
                    "task_process_died",
                    task_id=delivery.envelope.task_id,
                    pid=child.pid,
                    how=str(lost),
                    attempt=delivery.attempt,
                )
                self._release(delivery, "process_died")
            return None
        except ChildError:  # it answered, so it is in step and can take the next envelope
            self._idle.put(child)
            raise
        except BaseException:  # the pipe is in an unknown state: never reuse this child
            child.kill()
            self._replace(child)
            raise
        if self.max_tasks_per_child is not None and child.tasks >= self.max_tasks_per_child:
            child.stop()
            self._replace(child)
        else:
            self._idle.put(child)
        outcome: TaskOutcome = loads(answer)
        return outcome

    def _respawn(self, delivery: Delivery) -> Child | None:
        """A child in place of one that could not be started earlier; ``None`` (task handed back) if none can."""
        try:
            return self._spawn()
        except Exception as exc:
            self._idle.put(None)
            self._log.error(
                "pool_process_start_failed",
                task_id=delivery.envelope.task_id,
                error=f"{type(exc).__name__}: {exc}",
                retry_in=RESPAWN_PAUSE,
            )
            self._release(delivery, "no_process")
            time.sleep(RESPAWN_PAUSE)  # holding the slot a moment keeps this from spinning
            return None

    def _replace(self, child: Child) -> None:
        """Forget ``child`` and, unless the pool is closing, make a fresh one idle in its place.

        A fresh child that cannot be started now (out of memory, a process limit) is left to
        the next task that needs it (:meth:`_respawn`).
        """
        child.close()
        with self._lock:
            self._children.discard(child)
        if self._closing:
            return
        fresh: Child | None = None
        try:
            fresh = self._spawn()
        except Exception as exc:
            self._log.warning("pool_process_start_failed", error=f"{type(exc).__name__}: {exc}")
        self._idle.put(fresh)

    def _spawn(self) -> Child:
        assert self._handover is not None, "start() hands the worker's clients to children"
        child = Child(self._context, self._handover, f"graflow-pool-{next(self._names)}", self.child_setup)
        with self._lock:
            self._children.add(child)
        return child


def _kill_all(children: set[Child], lock: threading.Lock) -> None:
    """End every child in ``children`` now (a function of its arguments only: it is also a finalizer)."""
    with lock:
        doomed = list(children)
    for child in doomed:
        child.kill()


def _context() -> BaseContext:
    """``forkserver`` with Graflow preloaded where the platform has it, else ``spawn``.

    The fork server is Python's, one per process: its preload list matters only before
    it first starts.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_PRELOAD])
        return context
    return multiprocessing.get_context("spawn")
