"""Tasks for testing coordination backends: they record, wait, meet and hang where members run.

Members may run in other processes, where a closure is a copy: these tasks leave what
a test needs in files (``folder``) or in the run's channel, never in a Python object
shared with the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from tests.support.waiting import wait_until

#: Long enough never to expire on a loaded machine; a member that waits this long has failed.
PATIENCE = 20.0
#: Time given to a late result to land where it must not (it can only make a test pass wrongly).
GRACE = 0.3


def returns(task_id: str, value: Any) -> TaskWrapper:
    return TaskWrapper(task_id, lambda: value)


def fails(task_id: str) -> TaskWrapper:
    def body() -> None:
        raise ValueError(f"{task_id} broke")

    return TaskWrapper(task_id, body)


def waits(task_id: str, seconds: float, value: Any) -> TaskWrapper:
    """Sleeps ``seconds``, then returns ``value``."""

    def body() -> Any:
        time.sleep(seconds)
        return value

    return TaskWrapper(task_id, body)


def appends(task_id: str, key: str = "order") -> TaskWrapper:
    """Appends its id to the channel list ``key`` and returns it."""

    def body(ctx: TaskExecutionContext) -> str:
        ctx.get_channel().append(key, task_id)
        return task_id

    return TaskWrapper(task_id, body, inject_context=True)


def timed(task_id: str, seconds: float) -> TaskWrapper:
    """Holds its place ``seconds``; appends ``(id, start, end)`` (epoch seconds) to the channel list ``spans``."""

    def body(ctx: TaskExecutionContext) -> str:
        start = time.time()
        time.sleep(seconds)
        ctx.get_channel().append("spans", (task_id, start, time.time()))
        return task_id

    return TaskWrapper(task_id, body, inject_context=True)


def meets(task_id: str, folder: Path, parties: int, hold: float = 0.0) -> TaskWrapper:
    """Checks in, waits until ``parties`` members have (a barrier across threads and processes),
    holds ``hold`` seconds, then appends ``(id, start, end)`` to the channel list ``spans``."""

    def body(ctx: TaskExecutionContext) -> str:
        start = time.time()
        (folder / f"{task_id}.in").touch()
        wait_until(lambda: len(list(folder.glob("*.in"))) >= parties, PATIENCE, f"{parties} members at once")
        time.sleep(hold)
        ctx.get_channel().append("spans", (task_id, start, time.time()))
        return task_id

    return TaskWrapper(task_id, body, inject_context=True)


def hangs(task_id: str, folder: Path) -> TaskWrapper:
    """Runs until :func:`release` (at most PATIENCE), then returns ``"late"``.

    Leaves ``<id>.started`` (holding its pid) and, if it ever finishes, ``<id>.finished``.
    """

    def body() -> str:
        _write(folder / f"{task_id}.started", str(os.getpid()))
        wait_until(lambda: (folder / "release").exists(), PATIENCE, "the test to release the member")
        (folder / f"{task_id}.finished").touch()
        return "late"

    return TaskWrapper(task_id, body)


def release(folder: Path) -> None:
    """Let the members :func:`hangs` made in ``folder`` finish."""
    (folder / "release").touch()


def ended(folder: Path, task_id: str) -> bool:
    """Whether a member :func:`hangs` made has ended: finished, stopped with its process, or never started."""
    if (folder / f"{task_id}.finished").exists():
        return True
    started = folder / f"{task_id}.started"
    if not started.exists():
        return True
    try:
        os.kill(int(started.read_text()), 0)
    except ProcessLookupError:
        return True
    return False


def releases_then_reads(task_id: str, hung_id: str, folder: Path) -> TaskWrapper:
    """Releases a hung member while the run goes on, waits until it has ended, and returns
    the result the run then holds for it (``"no result"`` when there is none)."""

    def body(ctx: TaskExecutionContext) -> Any:
        release(folder)
        wait_until(lambda: ended(folder, hung_id), PATIENCE, f"{hung_id!r} to end")
        time.sleep(GRACE)
        return ctx.get_result(hung_id, "no result")

    return TaskWrapper(task_id, body, inject_context=True)


def _write(path: Path, text: str) -> None:
    """Write ``text`` so that a reader sees all of it or no file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.rename(path)


def peak(spans: Iterable[tuple[str, float, float]]) -> int:
    """The most spans open at one moment (a span that ends as another starts does not overlap it)."""
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    running = top = 0
    for _, step in events:
        running += step
        top = max(top, running)
    return top


def run_past_a_hung_member(backend: str, timeout: float, folder: Path) -> tuple[str, ExecutionContext]:
    """Run ``quick | hang`` on ``backend`` with ``timeout``, best effort, and release ``hang``
    once the run is over; return the group's id and the run's context."""
    with workflow("hung_member") as wf:
        group = returns("quick", "quick") | hangs("hang", folder)
        group.with_execution(backend=backend, timeout=timeout, policy=ErrorHandlingPolicy.BEST_EFFORT)
        try:
            _, context = wf.execute(ret_context=True)
        finally:
            release(folder)
    return group.task_id, context
