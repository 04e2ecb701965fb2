"""The brief's smaller snippets (chapters 2, 3, 4 and 8) run against this kernel.

The big ones have their own files (``adaptive_processor`` and the hyperparameter loop in
``core/test_dynamic_tasks.py``, the state machines in ``core/test_state_machines.py``, the
handlers in ``core/test_handlers.py``). Here are the use-case fragments: each is wrapped in
the smallest task that makes it runnable, its own lines kept as written, and the names it
calls (``api_call``, ``load_config``, ...) are deterministic stand-ins.
"""

from __future__ import annotations

import logging
import threading
from enum import Enum
from typing import Any

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow

# --- chapter 2: dynamic tasks, use cases -----------------------------------------------------------


@pytest.mark.parametrize(("data_type", "expected"), [("image", "image_proc"), ("text", "text_proc")])
def test_classification_pipeline_branches_on_the_data_type(data_type: str, expected: str) -> None:
    ran: list[str] = []

    def process_image() -> str:
        ran.append("image_proc")
        return "thumbnails"

    def process_text() -> str:
        ran.append("text_proc")
        return "tokens"

    with workflow("classification") as wf:

        @task(inject_context=True)
        def classify(context: TaskExecutionContext) -> None:
            if data_type == "image":
                context.next_task(TaskWrapper("image_proc", process_image))
            elif data_type == "text":
                context.next_task(TaskWrapper("text_proc", process_text))

        wf.execute()

    assert ran == [expected]


@pytest.mark.parametrize(
    ("failures", "outcome"),
    [
        (1, ["call 1 failed", "call 2 ok"]),
        (5, ["call 1 failed", "call 2 failed", "call 3 failed", "log_error"]),
    ],
    ids=["recovers", "gives up"],
)
def test_fault_tolerant_api_call_retries_by_iteration_then_logs_the_error(
    failures: int, outcome: list[str]
) -> None:
    events: list[str] = []
    max_retries = 2

    def api_call() -> str:
        n = len(events) + 1
        if n <= failures:
            events.append(f"call {n} failed")
            raise ConnectionError("upstream down")
        events.append(f"call {n} ok")
        return "payload"

    def handle_error() -> str:
        events.append("log_error")
        return "logged"

    with workflow("fault_tolerant") as wf:

        @task(inject_context=True)
        def call_api(context: TaskExecutionContext, data: dict[str, int] | None = None) -> Any:
            attempts = (data or {}).get("attempts", 0)
            result = None
            try:
                result = api_call()
            except Exception:
                if attempts < max_retries:
                    context.next_iteration({"attempts": attempts + 1})
                else:
                    context.next_task(TaskWrapper("log_error", handle_error))
            return result

        wf.execute()

    assert events == outcome


def test_progressive_enhancement_iterates_until_the_target_quality_then_finalizes() -> None:
    target_quality = 0.8
    saved: list[float] = []

    def apply_enhancement(quality: float) -> float:
        return round(quality + 0.25, 2)

    with workflow("progressive") as wf:

        @task(inject_context=True)
        def enhance(context: TaskExecutionContext, data: float | None = None) -> float:
            current_quality = 0.1 if data is None else data
            if current_quality < target_quality:
                context.next_iteration(apply_enhancement(current_quality))
            else:
                save_result = lambda: saved.append(current_quality) or "final"  # noqa: E731
                context.next_task(TaskWrapper("finalize", save_result))
            return current_quality

        result, ctx = wf.execute(ret_context=True)

    assert saved == [0.85]  # 0.1 -> 0.35 -> 0.6 -> 0.85
    assert ctx.cycle_counts["enhance"] == 4
    assert result == "final"


# --- chapter 3: state machine best practices --------------------------------------------------------------


class OrderState(Enum):
    NEW = "NEW"
    VALIDATED = "VALIDATED"
    PAID = "PAID"


def test_enum_states_and_logged_transitions(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("graflow.tests.fsm")

    with workflow("enum_states") as wf:

        @task(inject_context=True)
        def order_fsm(context: TaskExecutionContext) -> str:
            channel = context.get_channel()
            old_state = channel.get("state", OrderState.NEW.value)
            transitions = {
                OrderState.NEW.value: OrderState.VALIDATED,
                OrderState.VALIDATED.value: OrderState.PAID,
            }
            if old_state in transitions:
                new_state = transitions[old_state].value
                logger.info(f"State transition: {old_state} → {new_state}")
                channel.set("state", new_state)
                context.next_iteration()
            return old_state

        with caplog.at_level(logging.INFO, logger="graflow.tests.fsm"):
            result = wf.execute("order_fsm", max_steps=100)

    assert result == "PAID"
    assert [r.getMessage() for r in caplog.records if r.name == "graflow.tests.fsm"] == [
        "State transition: NEW → VALIDATED",
        "State transition: VALIDATED → PAID",
    ]


def test_an_unexpected_state_raises_and_names_the_task() -> None:
    with workflow("unexpected_state") as wf:

        @task(inject_context=True)
        def strict_fsm(context: TaskExecutionContext) -> None:
            current_state = context.get_channel().get("state", "START")
            if current_state == "START":
                context.next_iteration()
            else:
                raise ValueError(f"Unknown state: {current_state}")

        with pytest.raises(ValueError, match="Unknown state: S3") as info:
            wf.execute(initial_channel={"state": "S3"})

    assert info.value.graflow_task_id == "strict_fsm"  # type: ignore[attr-defined]


# --- chapter 4: the handler architecture ---------------------------------------------------------------------


def test_the_handler_architecture_snippet_registers_and_uses_a_gpu_handler() -> None:
    gpu_lock = threading.Lock()

    # カスタム実装
    class GPUHandler(TaskHandler):
        def execute_task(self, task, context):
            with gpu_lock:
                result = task.run()  # GPU上で実行
            context.set_result(task.task_id, result)

    # 登録
    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())

    with workflow("handler_architecture") as wf:
        # 使用
        @task(handler="gpu")
        def train_model():
            return {"loss": 0.1}

        result = wf.execute(engine=engine)

    assert result == {"loss": 0.1}


# --- chapter 8: channels ----------------------------------------------------------------------------------------


def test_producer_and_consumer_communicate_through_the_channel() -> None:
    seen: dict[str, Any] = {}

    with workflow("pubsub") as wf:
        # プロデューサータスク
        @task(inject_context=True)
        def producer(context):
            channel = context.get_channel()
            channel.set("config", {"batch_size": 100})
            channel.set("metrics", {"processed": 0})

        # コンシューマータスク（疎結合）
        @task(inject_context=True)
        def consumer(context):
            channel = context.get_channel()
            config = channel.get("config")
            metrics = channel.get("metrics", default={})
            seen.update(config=config, metrics=metrics)

        producer >> consumer
        wf.execute()

    assert seen == {"config": {"batch_size": 100}, "metrics": {"processed": 0}}


def test_shared_config_metrics_aggregation_and_progress_tracking() -> None:
    def load_config() -> dict[str, str]:
        return {"region": "eu"}

    with workflow("channel_use_cases") as wf:

        @task(inject_context=True)
        def setup(context):
            config = load_config()
            context.get_channel().set("config", config)

        # 後続の全タスクが設定にアクセス
        @task(inject_context=True)
        def process(context):
            config = context.get_channel().get("config")
            return config["region"]

        @task(inject_context=True)
        def task_with_metrics(context):
            channel = context.get_channel()
            metrics = channel.get("metrics", [])
            metrics.append({"task": "...", "duration": 1.5})
            channel.set("metrics", metrics)

        @task(inject_context=True)
        def track_progress(context):
            channel = context.get_channel()
            progress = channel.get("progress", 0)
            channel.set("progress", progress + 10)

        setup >> process >> task_with_metrics >> track_progress
        _, ctx = wf.execute(ret_context=True)

    channel = ctx.get_channel()
    assert ctx.get_result("process") == "eu"
    assert channel.get("metrics") == [{"task": "...", "duration": 1.5}]
    assert channel.get("progress") == 10
    assert sorted(channel.keys()) == ["config", "metrics", "progress"]
    channel.clear()
    assert channel.keys() == []
