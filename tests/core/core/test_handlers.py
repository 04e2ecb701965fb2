"""Task handlers: pluggable strategies that run a task (brief chapter 4; SPEC section 7).

The Retry, Caching, RateLimit and Monitoring handlers below are the brief's code, character
for character; they run through ``@task(handler=...)`` against this kernel.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler
from graflow.core.handlers.direct import DirectTaskHandler
from graflow.core.task import Executable, TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError

logger = logging.getLogger(__name__)

# --- the brief's handlers, as written ------------------------------------------------------------


class RetryHandler(TaskHandler):
    def __init__(self, max_retries=3):
        self.max_retries = max_retries

    def execute_task(self, task, context):
        for attempt in range(self.max_retries):
            try:
                result = task.run()
                context.set_result(task.task_id, result)
                return
            except Exception as e:  # noqa: F841 - the brief's code, as written
                if attempt == self.max_retries - 1:
                    raise
                logger.warning(f"Retry {attempt + 1}/{self.max_retries}")


class CachingHandler(TaskHandler):
    def __init__(self):
        self.cache = {}

    def execute_task(self, task, context):
        if task.task_id in self.cache:
            context.set_result(task.task_id, self.cache[task.task_id])
            return

        result = task.run()
        self.cache[task.task_id] = result
        context.set_result(task.task_id, result)


class RateLimitHandler(TaskHandler):
    def __init__(self, min_interval=1.0):
        self.min_interval = min_interval
        self.last_execution = 0

    def execute_task(self, task, context):
        elapsed = time.time() - self.last_execution
        if elapsed < self.min_interval:
            time.sleep(self.min_interval - elapsed)

        result = task.run()
        self.last_execution = time.time()
        context.set_result(task.task_id, result)


class MonitoringHandler(TaskHandler):
    def __init__(self):
        self.metrics = []

    def execute_task(self, task, context):
        start = time.time()
        try:
            result = task.run()
            status = "success"
            context.set_result(task.task_id, result)
        except Exception as e:  # noqa: F841 - the brief's code, as written
            status = "failed"
            raise
        finally:
            self.metrics.append({"task": task.task_id, "duration": time.time() - start, "status": status})


# --- SPEC section 7's GPUHandler -------------------------------------------------------------------


class GPUHandler(TaskHandler):
    def execute_task(self, task, context):
        result = task.run()
        # optional: if the handler never calls it, its return value is stored
        context.set_result(task.task_id, result)
        return result


class FakeClock:
    """Stands in for the ``time`` module: ``sleep`` advances ``time()`` instead of waiting."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Point this module's ``time`` (used by the brief's handlers) at a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(sys.modules[__name__], "time", fake)
    return fake


# --- custom handlers ---------------------------------------------------------------------------------


def test_a_registered_handler_runs_its_tasks_and_its_return_value_is_the_result() -> None:
    calls: list[tuple[str, type]] = []

    class Doubling(TaskHandler):
        def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
            calls.append((task.task_id, type(context)))
            return task.run() * 2  # type: ignore[attr-defined]

    engine = WorkflowEngine()
    engine.register_handler("double", Doubling())

    with workflow("custom_handler") as wf:

        @task(handler="double")
        def answer() -> int:
            return 21

        result, ctx = wf.execute(ret_context=True, engine=engine)

    assert result == 42
    assert ctx.get_result("answer") == 42
    assert calls == [("answer", ExecutionContext)]


def test_set_result_wins_over_the_handler_return_value() -> None:
    class Explicit(TaskHandler):
        def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
            value = task.run()  # type: ignore[attr-defined]
            context.set_result(task.task_id, f"stored {value}")
            return "returned"

    engine = WorkflowEngine()
    engine.register_handler("explicit", Explicit())

    with workflow("set_result_wins") as wf:

        @task(handler="explicit")
        def value() -> int:
            return 1

        @task(inject_context=True)
        def reader(context: TaskExecutionContext) -> Any:
            return context.get_result("value")

        value >> reader
        result, ctx = wf.execute(ret_context=True, engine=engine)

    assert ctx.get_result("value") == "stored 1"
    assert result == "stored 1"


def test_the_spec_gpu_handler_runs_tasks_registered_under_gpu() -> None:
    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())

    with workflow("gpu") as wf:

        @task(handler="gpu")
        def train_model() -> str:
            return "trained"

        @task
        def evaluate() -> str:
            return "evaluated"

        train_model >> evaluate
        _, ctx = wf.execute(ret_context=True, engine=engine)

    assert ctx.get_result("train_model") == "trained"
    assert ctx.get_result("evaluate") == "evaluated"


def test_the_brief_gpu_handler_that_only_calls_set_result_serialises_gpu_tasks() -> None:
    gpu_lock = threading.Lock()
    held_during_run: list[bool] = []

    class BriefGPUHandler(TaskHandler):
        def execute_task(self, task, context):
            with gpu_lock:
                result = task.run()  # GPU上で実行
            context.set_result(task.task_id, result)

    engine = WorkflowEngine()
    engine.register_handler("gpu", BriefGPUHandler())

    with workflow("brief_gpu") as wf:

        @task(handler="gpu")
        def train_model() -> str:
            held_during_run.append(gpu_lock.locked())
            return "trained"

        result = wf.execute(engine=engine)

    assert result == "trained"
    assert held_during_run == [True]


def test_a_handler_passes_keyword_arguments_to_the_task() -> None:
    # The brief's GPUQueueHandler runs ``task.run(device=f"cuda:{gpu_id}")``.
    pool = SimpleNamespace(free=[0, 1], released=[])
    gpu_pool = SimpleNamespace(
        acquire=lambda: pool.free.pop(0), release=lambda gpu_id: pool.released.append(gpu_id)
    )

    class GPUQueueHandler(TaskHandler):
        def execute_task(self, task, context):
            gpu_id = gpu_pool.acquire()
            try:
                result = task.run(device=f"cuda:{gpu_id}")
            finally:
                gpu_pool.release(gpu_id)
            context.set_result(task.task_id, result)

    engine = WorkflowEngine()
    engine.register_handler("gpu_queue", GPUQueueHandler())

    with workflow("gpu_queue") as wf:

        @task(handler="gpu_queue")
        def train(device: str = "cpu") -> str:
            return f"trained on {device}"

        result = wf.execute(engine=engine)

    assert result == "trained on cuda:0"
    assert pool.released == [0]


def test_a_handler_runs_tasks_that_use_their_context() -> None:
    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())
    ran: list[str] = []

    with workflow("handler_context") as wf:

        @task(handler="gpu", inject_context=True)
        def spawner(context: TaskExecutionContext) -> str:
            context.get_channel().set("seen_by", context.task_id)
            context.next_task(TaskWrapper("follow_up", lambda: ran.append("follow_up") or "done"))
            return "spawned"

        result, ctx = wf.execute(ret_context=True, engine=engine)

    assert ran == ["follow_up"]
    assert ctx.get_result("spawner") == "spawned"
    assert ctx.channel.get("seen_by") == "spawner"
    assert result == "done"


def test_handlers_run_group_members() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    class Recording(TaskHandler):
        def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
            with lock:
                seen.append(task.task_id)
            return task.run()  # type: ignore[attr-defined]

    engine = WorkflowEngine()
    engine.register_handler("recording", Recording())

    with workflow("handler_in_group") as wf:

        @task(handler="recording")
        def left() -> str:
            return "L"

        @task
        def right() -> str:
            return "R"

        @task(inject_context=True)
        def join(context: TaskExecutionContext) -> str:
            return context.get_result("left") + context.get_result("right")

        (left | right) >> join
        result = wf.execute(engine=engine)

    assert result == "LR"
    assert seen == ["left"]


def test_an_engine_handler_overrides_a_plugin_handler_of_the_same_name() -> None:
    class Counting(DirectTaskHandler):
        def __init__(self) -> None:
            self.count = 0

        def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
            self.count += 1
            return super().execute_task(task, context)

    counting = Counting()
    engine = WorkflowEngine()
    engine.register_handler("direct", counting)

    with workflow("override_direct") as wf:

        @task
        def a() -> int:
            return 1

        @task
        def b() -> int:
            return 2

        a >> b
        result = wf.execute(engine=engine)

    assert result == 2
    assert counting.count == 2


def test_register_handler_refuses_something_that_is_not_a_handler() -> None:
    engine = WorkflowEngine()
    with pytest.raises(TypeError, match=r"register_handler\('gpu', \.\.\.\) needs a TaskHandler instance"):
        engine.register_handler("gpu", GPUHandler)  # type: ignore[arg-type]


def test_a_handler_must_implement_execute_task() -> None:
    class Incomplete(TaskHandler):
        pass

    with pytest.raises(TypeError, match="execute_task"):
        Incomplete()  # type: ignore[abstract]


def test_an_unknown_handler_fails_before_any_task_runs_listing_the_known_ones() -> None:
    ran: list[str] = []
    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())

    with workflow("unknown_handler") as wf:

        @task
        def first() -> None:
            ran.append("first")

        @task(handler="nope")
        def second() -> None:
            ran.append("second")

        first >> second
        with pytest.raises(ConfigError) as info:
            wf.execute(engine=engine)

    assert ran == []
    message = str(info.value)
    assert "task 'second'" in message
    assert "unknown handler 'nope'" in message
    assert "direct" in message
    assert "gpu" in message


# --- the brief's handlers in use -------------------------------------------------------------------------


def test_retry_handler_retries_a_flaky_task_until_it_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []
    engine = WorkflowEngine()
    engine.register_handler("retry", RetryHandler(max_retries=3))

    with workflow("retry_handler") as wf:

        @task(handler="retry")
        def flaky() -> str:
            attempts.append(len(attempts) + 1)
            if len(attempts) < 3:
                raise ConnectionError("try again")
            return "finally"

        with caplog.at_level(logging.WARNING, logger=__name__):
            result = wf.execute(engine=engine)

    assert result == "finally"
    assert attempts == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records if r.name == __name__] == ["Retry 1/3", "Retry 2/3"]


def test_retry_handler_reraises_the_last_error_when_every_attempt_fails() -> None:
    attempts: list[int] = []
    engine = WorkflowEngine()
    engine.register_handler("retry", RetryHandler(max_retries=2))

    with workflow("retry_handler_gives_up") as wf:

        @task(handler="retry")
        def broken() -> None:
            attempts.append(1)
            raise ConnectionError(f"attempt {len(attempts)} failed")

        with pytest.raises(ConnectionError, match="attempt 2 failed") as info:
            wf.execute(engine=engine)

    assert len(attempts) == 2
    assert info.value.graflow_task_id == "broken"  # type: ignore[attr-defined]


def test_caching_handler_runs_a_task_once_and_serves_later_runs_from_its_cache() -> None:
    calls: list[int] = []
    caching = CachingHandler()
    engine = WorkflowEngine()
    engine.register_handler("cached", caching)

    with workflow("caching_handler") as wf:

        @task(handler="cached")
        def expensive() -> dict[str, int]:
            calls.append(1)
            return {"rows": 1_000}

        first = wf.execute(engine=engine)
        second, ctx = wf.execute(ret_context=True, engine=engine)

    assert first == second == {"rows": 1_000}
    assert ctx.get_result("expensive") == {"rows": 1_000}
    assert calls == [1]
    assert caching.cache == {"expensive": {"rows": 1_000}}


def test_rate_limit_handler_spaces_out_consecutive_tasks(clock: FakeClock) -> None:
    starts: list[float] = []
    engine = WorkflowEngine()
    engine.register_handler("rate_limited", RateLimitHandler(min_interval=1.0))

    with workflow("rate_limit_handler") as wf:

        @task(handler="rate_limited")
        def call_api_1() -> int:
            starts.append(clock.now)
            clock.now += 0.25  # the call itself takes a quarter of a second
            return 1

        @task(handler="rate_limited")
        def call_api_2() -> int:
            starts.append(clock.now)
            return 2

        call_api_1 >> call_api_2
        _, ctx = wf.execute(ret_context=True, engine=engine)

    assert clock.sleeps == [1.0]  # the second call waited out the interval after the first ended
    assert starts == [1_000.0, 1_001.25]
    assert ctx.get_result("call_api_1") == 1
    assert ctx.get_result("call_api_2") == 2


def test_monitoring_handler_records_duration_and_status_and_reraises_failures(clock: FakeClock) -> None:
    monitoring = MonitoringHandler()
    engine = WorkflowEngine()
    engine.register_handler("monitored", monitoring)

    with workflow("monitoring_handler") as wf:

        @task(handler="monitored")
        def fast() -> str:
            clock.now += 0.5
            return "ok"

        @task(handler="monitored")
        def broken() -> None:
            clock.now += 2.0
            raise ValueError("bad row 7")

        fast >> broken
        with pytest.raises(ValueError, match="bad row 7") as info:
            wf.execute(engine=engine)

    assert info.value.graflow_task_id == "broken"  # type: ignore[attr-defined]
    assert monitoring.metrics == [
        {"task": "fast", "duration": 0.5, "status": "success"},
        {"task": "broken", "duration": 2.0, "status": "failed"},
    ]


# --- composition -----------------------------------------------------------------------------------------


class Tracing(TaskHandler):
    """Wraps another handler, recording when it enters and leaves it."""

    def __init__(self, inner: TaskHandler, events: list[str]) -> None:
        self.inner = inner
        self.events = events

    def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
        self.events.append(f"enter {task.task_id}")
        try:
            return self.inner.execute_task(task, context)
        finally:
            self.events.append(f"leave {task.task_id}")


def test_a_handler_can_wrap_another_handler() -> None:
    events: list[str] = []
    caching = CachingHandler()
    engine = WorkflowEngine()
    engine.register_handler("traced_cache", Tracing(caching, events))

    with workflow("composition") as wf:

        @task(handler="traced_cache")
        def lookup() -> str:
            events.append("run lookup")
            return "value"

        first = wf.execute(engine=engine)
        second = wf.execute(engine=engine)

    # The inner CachingHandler returns None and stores with set_result: that result stands.
    assert first == second == "value"
    assert events == ["enter lookup", "run lookup", "leave lookup", "enter lookup", "leave lookup"]


def test_wrapped_handlers_stack_in_order() -> None:
    events: list[str] = []
    engine = WorkflowEngine()
    engine.register_handler("stacked", Tracing(Tracing(DirectTaskHandler(), events), events))

    with workflow("stacked_handlers") as wf:

        @task(handler="stacked")
        def inner_most() -> int:
            events.append("run")
            return 5

        result = wf.execute(engine=engine)

    assert result == 5
    assert events == ["enter inner_most", "enter inner_most", "run", "leave inner_most", "leave inner_most"]
