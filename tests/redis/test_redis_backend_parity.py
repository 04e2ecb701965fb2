"""The same workflow gives the same results on both backends (SPEC section 10).

Every scenario is run twice: in memory, and with ``queue_backend="redis"`` +
``channel_backend="redis"`` on in-test workers. Each run is reduced to a summary (the
last result, every task's result, the channel, or the error's type, message, task id and
attributes); the two summaries must be equal, and must equal what the scenario expects,
so both backends cannot agree on a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.retry import RetryPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from tests.redis.thread_worker import ThreadWorker

Summary = dict[str, Any]


class InventoryError(ValueError):
    """A user-defined error: it must come back from a worker as this very class."""


class Order(TypedDict):
    order_id: str
    quantity: int


# --- scenarios: each builds its workflow inside `with workflow(...)` -----------------------------


def chain() -> dict[str, Any]:
    @task(inject_context=True)
    def extract(ctx: TaskExecutionContext) -> list[int]:
        ctx.get_channel().set("source", "orders-db")
        return [3, 1, 2]

    @task(inject_context=True)
    def transform(ctx: TaskExecutionContext) -> list[int]:
        return sorted(x * 10 for x in ctx.get_result("extract"))

    @task
    def load(source: str, batch: int = 1) -> str:  # parameters filled from the channel
        return f"{source}:{batch}"

    extract >> transform >> load
    return {"initial_channel": {"batch": 7}}


def fan_in() -> dict[str, Any]:
    @task
    def left() -> int:
        return 2

    @task
    def right() -> int:
        return 40

    @task(inject_context=True)
    def join(ctx: TaskExecutionContext) -> int:
        return ctx.get_result("left") + ctx.get_result("right")

    (left | right).set_group_name("pair") >> join
    return {}


def fan_out_fan_in() -> dict[str, Any]:
    @task
    def source() -> int:
        return 3

    def member(name: str, factor: int) -> TaskWrapper:
        @task(name, inject_context=True)
        def work(ctx: TaskExecutionContext) -> int:
            ctx.get_channel().append("visited", name)
            ctx.get_channel().atomic_add("sum", factor)
            return ctx.get_result("source") * factor

        return work

    @task(inject_context=True)
    def sink(ctx: TaskExecutionContext) -> list[int]:
        return [ctx.get_result(n) for n in ("a", "b", "c")]

    source >> (member("a", 1) | member("b", 2) | member("c", 3)).set_group_name("spread") >> sink
    return {}


def _ok(name: str) -> TaskWrapper:
    return TaskWrapper(name, lambda: f"{name} ok")


def _bad(name: str) -> TaskWrapper:
    def fail() -> None:
        raise InventoryError(f"{name} is out of stock")

    return TaskWrapper(name, fail)


def best_effort() -> dict[str, Any]:
    @task(inject_context=True)
    def report(ctx: TaskExecutionContext) -> dict[str, Any]:
        return {n: ctx.get_result(n, "missing") for n in ("a", "bad", "c")}

    (_ok("a") | _bad("bad") | _ok("c")).set_group_name("g").with_policy(
        ErrorHandlingPolicy.BEST_EFFORT
    ) >> report
    return {}


def strict_group_fails() -> dict[str, Any]:
    (_ok("a") | _bad("bad")).set_group_name("g") >> _ok("never")
    return {}


def at_least_n_passes() -> dict[str, Any]:
    group = (_ok("a") | _ok("b") | _bad("bad")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.AT_LEAST_N(n=2)) >> _ok("after")
    return {}


def at_least_n_fails() -> dict[str, Any]:
    group = (_ok("a") | _bad("bad") | _bad("worse")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.AT_LEAST_N(n=2)) >> _ok("never")
    return {}


def critical_member_fails() -> dict[str, Any]:
    group = (_bad("payment") | _ok("email")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.CRITICAL_TASKS(["payment"])) >> _ok("never")
    return {}


def dynamic_next_task() -> dict[str, Any]:
    @task(inject_context=True)
    def router(ctx: TaskExecutionContext) -> str:
        for n in range(3):
            ctx.next_task(TaskWrapper(f"shard_{n}", lambda n=n: n * n))
        return "routed"

    @task
    def finish() -> str:
        return "finished"

    router >> finish
    return {}


def next_iteration_converges() -> dict[str, Any]:
    @task(inject_context=True, max_cycles=20)
    def optimize(ctx: TaskExecutionContext, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {"step": 0, "loss": 100.0}
        params = {"step": params["step"] + 1, "loss": params["loss"] / 2, "cycle": ctx.cycle_count}
        if params["loss"] > 10:
            ctx.next_iteration(params)
        return params

    @task(inject_context=True)
    def report(ctx: TaskExecutionContext) -> int:
        return ctx.get_result("optimize")["step"]

    optimize >> report
    return {}


def goto_skips_successors() -> dict[str, Any]:
    @task(inject_context=True)
    def check(ctx: TaskExecutionContext) -> str:
        ctx.next_task(TaskWrapper("emergency", lambda: "handled"), goto=True)
        return "checked"

    check >> _ok("normal") >> _ok("normal_after")
    return {}


def retries_then_success() -> dict[str, Any]:
    @task(inject_context=True, retry_policy=RetryPolicy(max_retries=3, initial_interval=0.01, jitter=False))
    def flaky(ctx: TaskExecutionContext) -> str:
        attempt = ctx.get_channel().atomic_add("attempts", 1)
        if attempt < 3:
            raise ConnectionError(f"attempt {attempt} failed")
        return f"ok on attempt {attempt} (retry_count={ctx.retry_count})"

    flaky >> _ok("after")
    return {}


def retries_exhausted() -> dict[str, Any]:
    @task(max_retries=2)
    def always_fails() -> None:
        raise InventoryError("still out of stock")

    always_fails >> _ok("never")
    return {}


def user_error_propagates() -> dict[str, Any]:
    @task
    def prepare() -> int:
        return 1

    @task
    def reserve(quantity: int = 5) -> None:
        raise InventoryError(f"cannot reserve {quantity} units")

    prepare >> reserve >> _ok("never")
    return {}


def builtin_error_propagates() -> dict[str, Any]:
    @task
    def lookup() -> Any:
        return {}["missing-key"]

    lookup >> _ok("never")
    return {}


def channel_operations_from_parallel_members() -> dict[str, Any]:
    def worker(n: int) -> TaskWrapper:
        @task(f"w{n}", inject_context=True)
        def work(ctx: TaskExecutionContext) -> int:
            channel = ctx.get_channel()
            for i in range(5):
                channel.append("events", (n, i))
                channel.atomic_add("count", 1)
                channel.atomic_add("total", 0.5)
            with channel.lock("balance"):
                channel.set("balance", channel.get("balance", 0) + n)
            channel.prepend("order", n)
            return n

        return work

    @task(inject_context=True)
    def audit(ctx: TaskExecutionContext) -> dict[str, Any]:
        channel = ctx.get_channel()
        return {
            "count": channel.get("count"),
            "total": channel.get("total"),
            "balance": channel.get("balance"),
            "events": len(channel.get("events")),
            "keys": sorted(channel.keys()),
        }

    (worker(1) | worker(2) | worker(3) | worker(4)).set_group_name("writers") >> audit
    return {}


def typed_channel_messages() -> dict[str, Any]:
    @task(inject_context=True)
    def place(ctx: TaskExecutionContext) -> str:
        ctx.get_typed_channel(Order).send("order", {"order_id": "A-1", "quantity": 3})
        try:
            ctx.get_typed_channel(Order).send("bad", {"order_id": "A-2", "quantity": "three"})  # type: ignore[typeddict-item]
        except TypeError as exc:
            return f"refused: {exc}"
        return "accepted"

    @task(inject_context=True)
    def ship(ctx: TaskExecutionContext) -> Order | None:
        return ctx.get_typed_channel(Order).receive("order")

    place >> ship
    return {}


def terminate_early() -> dict[str, Any]:
    @task(inject_context=True)
    def gate(ctx: TaskExecutionContext) -> str:
        ctx.terminate_workflow("nothing to do today")
        return "stopped"

    gate >> _ok("never")
    return {}


def cancel_run() -> dict[str, Any]:
    @task(inject_context=True)
    def gate(ctx: TaskExecutionContext) -> str:
        ctx.cancel_workflow("bad input")
        return "canceled"

    gate >> _ok("never")
    return {}


# --- the expected summaries (what both backends must produce) ----------------------------------

EXPECTED: dict[Callable[[], dict[str, Any]], Summary] = {
    chain: {
        "result": "orders-db:7",
        "results": {"extract": [3, 1, 2], "transform": [10, 20, 30], "load": "orders-db:7"},
        "channel": {"batch": 7, "source": "orders-db"},
    },
    fan_in: {
        "result": 42,
        "results": {"left": 2, "right": 40, "join": 42, "pair": {"left": 2, "right": 40}},
        "channel": {},
    },
    fan_out_fan_in: {
        "result": [3, 6, 9],
        "results": {
            "source": 3,
            "a": 3,
            "b": 6,
            "c": 9,
            "spread": {"a": 3, "b": 6, "c": 9},
            "sink": [3, 6, 9],
        },
        "channel": {"sum": 6, "visited": ["a", "b", "c"]},
    },  # fmt: skip
    best_effort: {
        "result": {"a": "a ok", "bad": "missing", "c": "c ok"},
        "results": {
            "a": "a ok",
            "c": "c ok",
            "g": {"a": "a ok", "c": "c ok"},
            "report": {"a": "a ok", "bad": "missing", "c": "c ok"},
        },
        "channel": {},
    },  # fmt: skip
    strict_group_fails: {
        "error": "ParallelGroupError",
        "task_id": None,
        "group_id": "g",
        "failed_tasks": [("bad", "InventoryError: bad is out of stock")],
        "successful_tasks": ["a"],
    },
    at_least_n_passes: {
        "result": "after ok",
        "results": {"a": "a ok", "b": "b ok", "g": {"a": "a ok", "b": "b ok"}, "after": "after ok"},
        "channel": {},
    },
    at_least_n_fails: {
        "error": "ParallelGroupError",
        "task_id": None,
        "group_id": "g",
        "failed_tasks": [
            ("bad", "InventoryError: bad is out of stock"),
            ("worse", "InventoryError: worse is out of stock"),
        ],
        "successful_tasks": ["a"],
    },  # fmt: skip
    critical_member_fails: {
        "error": "ParallelGroupError",
        "task_id": None,
        "group_id": "g",
        "failed_tasks": [("payment", "InventoryError: payment is out of stock")],
        "successful_tasks": ["email"],
    },
    dynamic_next_task: {
        "result": "finished",
        "results": {"router": "routed", "shard_0": 0, "shard_1": 1, "shard_2": 4, "finish": "finished"},
        "channel": {},
    },
    next_iteration_converges: {
        "result": 4,
        "results": {"optimize": {"step": 4, "loss": 6.25, "cycle": 4}, "report": 4},
        "channel": {},
    },
    goto_skips_successors: {
        "result": "handled",
        "results": {"check": "checked", "emergency": "handled"},
        "channel": {},
    },
    retries_then_success: {
        "result": "after ok",
        "results": {"flaky": "ok on attempt 3 (retry_count=2)", "after": "after ok"},
        "channel": {"attempts": 3},
    },
    retries_exhausted: {
        "error": "InventoryError",
        "message": "still out of stock",
        "task_id": "always_fails",
        "notes": ["graflow task 'always_fails' failed after 3 attempts"],
    },
    user_error_propagates: {
        "error": "InventoryError",
        "message": "cannot reserve 5 units",
        "task_id": "reserve",
        "notes": [],
    },
    builtin_error_propagates: {
        "error": "KeyError",
        "message": "'missing-key'",
        "task_id": "lookup",
        "notes": [],
    },
    channel_operations_from_parallel_members: {
        "result": {
            "count": 20,
            "total": 10.0,
            "balance": 10,
            "events": 20,
            "keys": ["balance", "count", "events", "order", "total"],
        },
        "results": {
            "w1": 1,
            "w2": 2,
            "w3": 3,
            "w4": 4,
            "writers": {"w1": 1, "w2": 2, "w3": 3, "w4": 4},
            "audit": {
                "count": 20,
                "total": 10.0,
                "balance": 10,
                "events": 20,
                "keys": ["balance", "count", "events", "order", "total"],
            },
        },
        "channel": {
            "balance": 10,
            "count": 20,
            "events": sorted((n, i) for n in range(1, 5) for i in range(5)),
            "order": [1, 2, 3, 4],
            "total": 10.0,
        },
    },  # fmt: skip
    typed_channel_messages: {
        "result": {"order_id": "A-1", "quantity": 3},
        "results": {
            "place": "refused: Order.quantity: expected int, got str ('three')",
            "ship": {"order_id": "A-1", "quantity": 3},
        },
        "channel": {"order": {"order_id": "A-1", "quantity": 3}},
    },  # fmt: skip
    terminate_early: {"result": "stopped", "results": {"gate": "stopped"}, "channel": {}},
    cancel_run: {
        "error": "GraflowWorkflowCanceledError",
        "message": "workflow canceled by task 'gate': bad input",
        "task_id": None,
        "notes": [],
    },  # fmt: skip
}


# --- running and summarizing ----------------------------------------------------------------------


def _normalize(value: Any) -> Any:
    """Channel lists are filled by concurrent members, in any order: compare them sorted."""
    if isinstance(value, list):
        return sorted(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def summarize(scenario: Callable[[], dict[str, Any]], **backend: Any) -> Summary:
    with workflow(scenario.__name__) as wf:
        options = scenario()
        try:
            result, ctx = wf.execute(ret_context=True, **options, **backend)
        except ParallelGroupError as exc:
            return {
                "error": type(exc).__name__,
                "task_id": getattr(exc, "graflow_task_id", None),
                "group_id": exc.group_id,
                "failed_tasks": sorted(exc.failed_tasks),
                "successful_tasks": sorted(exc.successful_tasks),
            }
        except Exception as exc:
            # Identity, not name: a user class must come back as the class the test defined.
            known = {InventoryError: "InventoryError", KeyError: "KeyError"}
            notes = [n for n in getattr(exc, "__notes__", []) if "attempts" in n]
            return {
                "error": known.get(type(exc), type(exc).__name__),
                "message": str(exc),
                "task_id": getattr(exc, "graflow_task_id", None),
                "notes": notes,
            }
    channel = {key: _normalize(ctx.channel.get(key)) for key in ctx.channel.keys()}
    results = dict(ctx.results)
    return {"result": result, "results": results, "channel": channel}


def _scenario_id(scenario: Callable[[], Any]) -> str:
    return scenario.__name__


@pytest.fixture
def workers(start_worker: Callable[..., ThreadWorker]) -> list[ThreadWorker]:
    """Two in-test workers with four slots each: groups run on more than one worker."""
    return [start_worker("parity-1", concurrency=4), start_worker("parity-2", concurrency=4)]


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=_scenario_id)
def test_a_workflow_gives_the_same_results_in_memory_and_on_redis(
    scenario: Callable[[], dict[str, Any]], config: dict[str, Any], workers: list[ThreadWorker]
) -> None:
    in_memory = summarize(scenario)
    on_redis = summarize(scenario, queue_backend="redis", channel_backend="redis", config=config)

    assert in_memory == EXPECTED[scenario]
    assert on_redis == in_memory
    if scenario is not terminate_early:
        ran = {task_id for w in workers for task_id, _ in w.completed}
        assert ran, "nothing ran on the workers: the Redis run stayed in process"


def test_a_user_error_from_a_worker_is_the_drivers_own_class_with_the_remote_traceback(
    config: dict[str, Any], workers: list[ThreadWorker]
) -> None:
    with workflow("remote_error") as wf:

        @task
        def reserve() -> None:
            raise InventoryError("none left")

        with pytest.raises(InventoryError) as info:
            wf.execute(queue_backend="redis", channel_backend="redis", config=config)

    assert type(info.value) is InventoryError
    notes = "\n".join(info.value.__notes__)
    assert "remote traceback" in notes
    assert "in reserve" in notes
    assert "InventoryError: none left" in notes
