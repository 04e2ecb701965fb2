"""``@task``: turn a function into a workflow task."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from graflow.core.routing import Routing
from graflow.core.task import TaskWrapper

if TYPE_CHECKING:
    from graflow.core.retry import RetryPolicy

__all__ = ["task"]


@overload
def task(func: Callable[..., Any], /) -> TaskWrapper: ...


@overload
def task(
    id: str | None = None,
    /,
    *,
    inject_context: bool = False,
    handler: str | None = None,
    max_cycles: int | None = None,
    max_retries: int | None = None,
    retry_policy: RetryPolicy | None = None,
    resolve_keyword_args: bool = True,
    timeout: float | None = None,
    queue: str | None = None,
    priority: int | None = None,
    rate_limit: str | None = None,
    concurrency_key: str | None = None,
    max_concurrency: int | None = None,
) -> Callable[[Callable[..., Any]], TaskWrapper]: ...


def task(
    func_or_id: Callable[..., Any] | str | None = None,
    /,
    *,
    id: str | None = None,  # noqa: A002 - the public keyword is ``id``
    inject_context: bool = False,
    handler: str | None = None,
    max_cycles: int | None = None,
    max_retries: int | None = None,
    retry_policy: RetryPolicy | None = None,
    resolve_keyword_args: bool = True,
    timeout: float | None = None,
    queue: str | None = None,
    priority: int | None = None,
    rate_limit: str | None = None,
    concurrency_key: str | None = None,
    max_concurrency: int | None = None,
) -> TaskWrapper | Callable[[Callable[..., Any]], TaskWrapper]:
    """Make a function a task; its id is the function's name unless given.

    ``@task``, ``@task()``, ``@task("custom_id")`` and ``@task(id="custom_id", ...)`` all work.
    ``inject_context=True`` passes the :class:`~graflow.core.context.TaskExecutionContext`
    as the first argument; ``handler`` names the handler that runs it; ``max_cycles``
    bounds ``next_iteration``; ``max_retries`` / ``retry_policy`` retry failed attempts;
    ``resolve_keyword_args`` fills parameters the caller did not pass from channel keys
    of the same name; ``timeout`` fails an attempt that runs longer (seconds). An
    ``async def`` function works as well: its result is the awaited value.

    Where and how fast it runs (:mod:`graflow.core.routing`): ``queue`` routes it to the
    workers serving that queue; ``priority`` 0-9 (default 5, higher first); ``rate_limit``
    ``"N/s"``, ``"N/m"`` or ``"N/h"`` and ``max_concurrency`` bound its starts across the
    fleet, counted per ``concurrency_key`` (default: the task id).
    """
    if isinstance(func_or_id, str):
        if id is not None and id != func_or_id:
            raise TypeError(f"@task got two ids: {func_or_id!r} and id={id!r}")
        id = func_or_id
    elif func_or_id is not None and not callable(func_or_id):
        raise TypeError(f"@task expects a function or a task id string, got {type(func_or_id).__name__}")

    def decorate(func: Callable[..., Any]) -> TaskWrapper:
        if not callable(func):
            raise TypeError(f"@task can only decorate a callable, got {type(func).__name__}")
        task_id = id or getattr(func, "__name__", None) or repr(func)
        routing = Routing.of(
            f"task {task_id!r}",
            queue=queue,
            priority=priority,
            rate_limit=rate_limit,
            concurrency_key=concurrency_key,
            max_concurrency=max_concurrency,
        )
        return TaskWrapper(
            task_id,
            func,
            inject_context=inject_context,
            handler_type=handler,
            max_cycles=max_cycles,
            max_retries=max_retries,
            retry_policy=retry_policy,
            resolve_keyword_args=resolve_keyword_args,
            timeout=timeout,
            routing=routing,
        )

    if callable(func_or_id):
        return decorate(func_or_id)
    return decorate
