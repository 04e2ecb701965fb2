"""``@task`` and ``TaskWrapper``: how a function becomes a task (SPEC section 2)."""

from __future__ import annotations

from typing import Any

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler
from graflow.core.retry import RetryPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import GraflowError, MissingTaskArgumentError

# --- the forms of @task ------------------------------------------------------------------


def test_bare_decorator_makes_a_task_named_after_the_function() -> None:
    @task
    def extract() -> int:
        return 1

    assert isinstance(extract, TaskWrapper)
    assert extract.task_id == "extract"


def test_empty_call_is_the_same_as_the_bare_decorator() -> None:
    @task()
    def extract() -> int:
        return 1

    assert isinstance(extract, TaskWrapper)
    assert extract.task_id == "extract"


def test_positional_string_is_the_task_id() -> None:
    @task("custom_id")
    def extract() -> int:
        return 1

    assert extract.task_id == "custom_id"


def test_id_keyword_is_the_task_id() -> None:
    @task(id="custom_id")
    def extract() -> int:
        return 1

    assert extract.task_id == "custom_id"


def test_options_are_kept_on_the_task() -> None:
    policy = RetryPolicy(max_retries=3, initial_interval=0.0, jitter=False)

    @task(
        id="tuned",
        inject_context=True,
        handler="gpu",
        max_cycles=10,
        retry_policy=policy,
        resolve_keyword_args=False,
    )
    def train(ctx: TaskExecutionContext) -> None:
        return None

    assert train.task_id == "tuned"
    assert train.inject_context is True
    assert train.handler_type == "gpu"
    assert train.max_cycles == 10
    assert train.retry_policy is policy
    assert train.max_retries == 3
    assert train.resolve_keyword_args is False


def test_max_retries_option_sets_the_retry_budget() -> None:
    @task(max_retries=2)
    def flaky() -> None:
        return None

    assert flaky.max_retries == 2


def test_defaults_are_no_context_default_handler_no_retries_and_channel_filling() -> None:
    @task
    def plain() -> None:
        return None

    assert plain.inject_context is False
    assert plain.handler_type is None
    assert plain.max_retries == 0
    assert plain.resolve_keyword_args is True


def test_two_different_ids_for_one_task_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"two ids: 'a' and id='b'"):

        @task("a", id="b")
        def extract() -> None:
            return None


def test_decorator_argument_that_is_neither_function_nor_id_is_rejected() -> None:
    with pytest.raises(TypeError, match="function or a task id string, got int"):
        task(42)  # type: ignore[call-overload]


# --- TaskWrapper built directly ----------------------------------------------------------


def test_task_wrapper_can_be_built_directly_from_a_function() -> None:
    def double(x: int) -> int:
        return 2 * x

    wrapped = TaskWrapper("double", double)
    assert wrapped.task_id == "double"
    assert wrapped.func is double
    assert wrapped.run(21) == 42


def test_task_wrapper_can_be_built_from_a_lambda_and_run_in_a_workflow() -> None:
    with workflow("lambda_task") as wf:

        @task
        def produce() -> str:
            return "rows"

        cleanup = TaskWrapper("cleanup", lambda: "cleaned")
        produce >> cleanup
        result, ctx = wf.execute(ret_context=True)

    assert result == "cleaned"
    assert ctx.get_result("produce") == "rows"


def test_task_wrapper_positional_arguments_follow_the_spec_signature() -> None:
    wrapped = TaskWrapper("gpu_job", lambda ctx: ctx.task_id, True, "direct")
    assert wrapped.inject_context is True
    assert wrapped.handler_type == "direct"
    assert wrapped.run() == "gpu_job"


@pytest.mark.parametrize("bad_id", ["", None, 7])
def test_task_wrapper_needs_a_non_empty_string_id(bad_id: Any) -> None:
    with pytest.raises(TypeError, match="task id must be a non-empty string"):
        TaskWrapper(bad_id, lambda: None)


def test_task_wrapper_needs_a_callable() -> None:
    with pytest.raises(TypeError, match=r"task 'x': expected a callable, got str"):
        TaskWrapper("x", "not a function")  # type: ignore[arg-type]


# --- run() and __call__ ---------------------------------------------------------------------


def test_run_executes_the_task_on_its_own_and_returns_its_result() -> None:
    @task
    def add(a: int, b: int = 10) -> int:
        return a + b

    assert add.run(1) == 11
    assert add.run(1, b=2) == 3


def test_calling_the_task_calls_the_plain_function() -> None:
    calls: list[tuple[Any, ...]] = []

    @task(inject_context=True)
    def record(ctx: Any, value: int) -> int:
        calls.append((ctx, value))
        return value * 2

    sentinel = object()
    assert record(sentinel, 4) == 8
    assert calls == [(sentinel, 4)]  # no context injected, nothing filled from a channel


def test_inject_context_passes_the_task_context_as_first_argument() -> None:
    @task(inject_context=True)
    def who_am_i(ctx: TaskExecutionContext, suffix: str = "") -> str:
        assert isinstance(ctx, TaskExecutionContext)
        return ctx.task_id + suffix

    assert who_am_i.run() == "who_am_i"
    assert who_am_i.run("!") == "who_am_i!"


def test_injected_context_belongs_to_the_running_workflow() -> None:
    seen: dict[str, Any] = {}

    with workflow("injected") as wf:

        @task(inject_context=True)
        def inspect_context(ctx: TaskExecutionContext) -> str:
            seen["task_id"] = ctx.task_id
            seen["session_id"] = ctx.session_id
            seen["k"] = ctx.get_channel().get("k")
            return "done"

        _, run_ctx = wf.execute(ret_context=True, initial_channel={"k": 1})

    assert seen == {"task_id": "inspect_context", "session_id": run_ctx.session_id, "k": 1}


# --- keyword arguments from the channel ---------------------------------------------------


def test_parameters_are_filled_from_channel_keys_of_the_same_name() -> None:
    with workflow("fill_from_channel") as wf:

        @task(inject_context=True)
        def login(ctx: TaskExecutionContext) -> None:
            ctx.get_channel().set("user_id", "u-42")

        @task
        def greet(user_id: str) -> str:
            return f"hello {user_id}"

        login >> greet
        assert wf.execute() == "hello u-42"


def test_channel_value_wins_over_a_parameter_default() -> None:
    with workflow("channel_over_default") as wf:

        @task
        def report(region: str = "default-region") -> str:
            return region

        assert wf.execute(initial_channel={"region": "eu-west"}) == "eu-west"
        assert wf.execute() == "default-region"


class _ExplicitArgumentHandler(TaskHandler):
    """Runs tasks the way a custom handler may: with arguments of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def execute_task(self, task: Any, context: Any) -> Any:
        return task.run(*self.args, **self.kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"), [((), {"region": "explicit"}), (("explicit",), {})], ids=["keyword", "positional"]
)
def test_an_explicit_argument_wins_over_the_channel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    engine = WorkflowEngine()
    engine.register_handler("explicit", _ExplicitArgumentHandler(*args, **kwargs))

    with workflow("explicit_over_channel") as wf:

        @task(handler="explicit")
        def report(region: str) -> str:
            return region

        assert wf.execute(initial_channel={"region": "from-channel"}, engine=engine) == "explicit"


def test_missing_required_parameter_names_the_parameter_and_how_to_fix_it() -> None:
    body_ran = []

    with workflow("missing_param") as wf:

        @task
        def load(table: str, batch_size: int = 100) -> None:
            body_ran.append(table)

        with pytest.raises(MissingTaskArgumentError) as excinfo:
            wf.execute()

    message = str(excinfo.value)
    assert "'load'" in message and "'table'" in message
    assert "batch_size" not in message  # it has a default
    assert "channel.set('table'" in message
    assert "initial_channel=" in message
    assert "default" in message
    assert body_ran == []
    assert isinstance(excinfo.value, GraflowError)
    assert isinstance(excinfo.value, TypeError)  # what Python raises for a missing argument
    assert excinfo.value.graflow_task_id == "load"  # type: ignore[attr-defined]


def test_missing_parameter_also_fails_a_standalone_run() -> None:
    @task
    def load(table: str) -> str:
        return table

    with pytest.raises(MissingTaskArgumentError, match="'table'"):
        load.run()
    assert load.run("orders") == "orders"


def test_without_resolve_keyword_args_the_channel_is_not_consulted() -> None:
    with workflow("no_resolve") as wf:

        @task(resolve_keyword_args=False)
        def with_default(region: str = "default-region") -> str:
            return region

        assert wf.execute(initial_channel={"region": "eu-west"}) == "default-region"

    with workflow("no_resolve_required") as wf:

        @task(resolve_keyword_args=False)
        def required(region: str) -> str:
            return region

        # The task is then a plain call: Python's own TypeError, with the task id attached.
        with pytest.raises(TypeError, match="'region'") as excinfo:
            wf.execute(initial_channel={"region": "eu-west"})
    assert excinfo.value.graflow_task_id == "required"  # type: ignore[attr-defined]
