"""Tasks: Python functions as workflow nodes.

A :class:`TaskWrapper` wraps one function. Everything it needs at run time (its
:class:`~graflow.core.context.TaskExecutionContext`, keyword arguments taken from the
channel, the data of ``next_iteration``) is worked out once, when the task is defined,
so that running a plain task is one function call.
"""

from __future__ import annotations

import copy as _copy
import inspect
import math
from collections.abc import Callable
from typing import Any

from graflow.core import scope
from graflow.core.aio import run_coroutine
from graflow.core.context import TaskExecutionContext, current_task_context, task_context
from graflow.core.dsl import Chain, Executable, ParallelGroup, chain, parallel
from graflow.core.retry import RetryPolicy
from graflow.core.routing import Routing
from graflow.exceptions import ConfigError, MissingTaskArgumentError

__all__ = [
    "Chain",
    "Executable",
    "MissingTaskArgumentError",
    "ParallelGroup",
    "TaskWrapper",
    "chain",
    "current_task_context",
    "parallel",
]


class TaskWrapper(Executable):
    """A Python function as a workflow task.

    Built by :func:`graflow.core.decorators.task`, or directly, also from a lambda::

        cleanup = TaskWrapper("cleanup", lambda: remove_temp_files())

    Calling the wrapper (``t(x)``) calls the function; :meth:`run` runs it as a task, with
    its context injected and missing keyword arguments filled from the channel. Built
    inside ``with workflow(...)`` it joins that workflow's graph, unless
    ``register=False`` (also spelled ``register_to_context=False``).
    """

    func: Callable[..., Any]
    inject_context: bool
    #: Of a task of a nested workflow, as it runs inside another run: the prefix of its
    #: workflow's ids (``"inner."``), by which it reads its siblings' results.
    namespace: str = ""

    def __init__(
        self,
        task_id: str,
        func: Callable[..., Any],
        inject_context: bool = False,
        handler_type: str | None = None,
        *,
        max_cycles: int | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        resolve_keyword_args: bool = True,
        register: bool = True,
        register_to_context: bool | None = None,
        timeout: float | None = None,
        bound: dict[str, Any] | None = None,
        routing: Routing | None = None,
    ) -> None:
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"a task id must be a non-empty string, got {task_id!r}")
        if not callable(func):
            raise TypeError(f"task {task_id!r}: expected a callable, got {type(func).__name__}")
        if isinstance(func, TaskWrapper):  # TaskWrapper("end", some_task): reuse the task's function
            inject_context = inject_context or func.inject_context
            func = func.func
        if max_cycles is not None and max_cycles < 1:
            raise ValueError(f"task {task_id!r}: max_cycles must be >= 1, got {max_cycles}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf
        ):
            raise ConfigError(
                f"task {task_id!r}: timeout must be a positive number of seconds (e.g. timeout=30) "
                f"or None for no limit, got {timeout!r}"
            )
        self.task_id = task_id
        self.func = func
        self.inject_context = inject_context
        self.handler_type = handler_type
        self.max_cycles = max_cycles
        self.resolve_keyword_args = resolve_keyword_args
        self.retry_policy = _retry_policy(task_id, max_retries, retry_policy)
        #: Seconds an attempt may run before it fails with :class:`TaskTimeoutError`.
        self.timeout: float | None = None if timeout is None else float(timeout)
        #: Its queue, priority and limits (``None``: none set; see :mod:`graflow.core.routing`).
        self.routing = routing
        #: Keyword arguments fixed when the task was bound (``t(task_id="x", city="Tokyo")``).
        self.bound: dict[str, Any] = dict(bound or {})
        #: Whether the function is ``async def``: its coroutine is awaited on the run's loop.
        self.is_async = inspect.iscoroutinefunction(func)
        self.__doc__ = getattr(func, "__doc__", None)
        params, self._has_var_kwargs = _parameters(func, skip_first=inject_context)
        self._params = [p for p in params if p.name not in self.bound]
        #: Whether the engine must set the task context before running it.
        self.needs_context = (
            inject_context
            or bool(self._params and resolve_keyword_args)
            or bool(self.bound)
            or self.is_async
            or self.timeout is not None
            or (routing is not None and routing.limited)  # its starts are counted around the attempt
        )
        if register_to_context is not None:  # the existing releases' spelling of ``register``
            register = register_to_context
        if register and (graph := scope.defining_graph()) is not None:
            graph.add_node(self)

    @property
    def parameter_keys(self) -> list[str]:
        """The channel keys the engine may fill this task's parameters from (none when it does not)."""
        return [p.name for p in self._params] if self.resolve_keyword_args else []

    @property
    def max_retries(self) -> int:
        """How many times a failed attempt is retried (0: never)."""
        return self.retry_policy.max_retries if self.retry_policy is not None else 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function; with ``task_id=...``, bind a new task instead (see :meth:`bind`)."""
        if "task_id" in kwargs and not args:
            return self.bind(**kwargs)
        return self.func(*args, **kwargs)

    def namespaced(self, prefix: str) -> TaskWrapper:
        copy = _copy.copy(self)
        copy.task_id = prefix + self.task_id
        copy.namespace = prefix
        return copy

    def bind(self, task_id: str, **params: Any) -> TaskWrapper:
        """A new task ``task_id`` that runs this function with ``params`` fixed.

        ``fetch(task_id="fetch_tokyo", city="Tokyo")`` is the existing releases' form. This
        task becomes a template: it leaves the workflow being defined, unless it is (or
        later gets) composed itself.
        """
        graph = scope.defining_graph()
        if graph is not None:
            graph.remove_isolated(self)
        return TaskWrapper(
            task_id,
            self.func,
            self.inject_context,
            self.handler_type,
            max_cycles=self.max_cycles,
            retry_policy=self.retry_policy,
            resolve_keyword_args=self.resolve_keyword_args,
            timeout=self.timeout,
            bound={**self.bound, **params},
            routing=self.routing,
        )

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task: inject its context and fill parameters from the channel.

        Inside a run the engine provides the context; called on its own, the task gets
        a fresh in-memory one, so ``t.run()`` works in a REPL or a unit test.
        """
        if not self.needs_context:
            return self.func(*args, **kwargs)
        ctx = task_context.get()
        if ctx is None or ctx.task is not self:
            return self._run_standalone(args, kwargs)
        return self._call_in(ctx, args, kwargs)

    def _call_in(self, ctx: TaskExecutionContext, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.bound:
            kwargs = {**self.bound, **kwargs}
        if self._params:
            kwargs = self._fill_parameters(ctx, len(args), kwargs)
        result = self.func(ctx, *args, **kwargs) if self.inject_context else self.func(*args, **kwargs)
        if self.is_async:
            return run_coroutine(result, self.timeout, task_id=self.task_id)
        return result

    def _fill_parameters(
        self, ctx: TaskExecutionContext, n_positional: int, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Explicit arguments win, then ``next_iteration`` data, then channel values, then defaults."""
        open_params = [p for p in self._params[n_positional:] if p.name not in kwargs]
        kwargs = dict(kwargs)
        if ctx.has_iteration_data:
            target = next((p for p in open_params if p.name == "data"), None)
            if target is None and self._has_var_kwargs:
                kwargs["data"] = ctx.iteration_data
            else:
                # The brief's convergence loops pass state to a parameter of any name
                # (``def optimize(context, params=None)`` + ``next_iteration(params)``).
                target = target or (open_params[0] if open_params else None)
                if target is not None:
                    kwargs[target.name] = ctx.iteration_data
                    open_params.remove(target)
        missing = []
        if self.resolve_keyword_args:
            channel = ctx.get_channel()
            for param in open_params:
                if channel.exists(param.name):
                    kwargs[param.name] = channel.get(param.name)
                elif param.default is inspect.Parameter.empty:
                    missing.append(param.name)
        else:
            missing = [p.name for p in open_params if p.default is inspect.Parameter.empty]
        if missing:
            raise MissingTaskArgumentError(
                f"task {self.task_id!r} needs {', '.join(map(repr, missing))}: not passed, "
                "not in the channel and no default. Set it in an earlier task "
                f"(channel.set({missing[0]!r}, ...)), pass it with initial_channel=, or give it a default."
            )
        return kwargs

    def _run_standalone(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        ctx = TaskExecutionContext.standalone(self)
        token = task_context.set(ctx)
        try:
            return self._call_in(ctx, args, kwargs)
        finally:
            task_context.reset(token)


def _retry_policy(task_id: str, max_retries: int | None, policy: RetryPolicy | None) -> RetryPolicy | None:
    if policy is not None:
        if max_retries is not None and max_retries != policy.max_retries:
            raise ValueError(
                f"task {task_id!r}: max_retries={max_retries} disagrees with "
                f"retry_policy.max_retries={policy.max_retries}; pass only one"
            )
        return policy if policy.max_retries else None
    if max_retries:
        return RetryPolicy(max_retries=max_retries)
    return None


def _parameters(func: Callable[..., Any], *, skip_first: bool) -> tuple[list[inspect.Parameter], bool]:
    """The parameters the engine may fill by name, and whether ``**kwargs`` is accepted."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: pass nothing extra
        return [], False
    params = list(signature.parameters.values())
    if skip_first and params:
        params = params[1:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)
