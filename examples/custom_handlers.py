"""Pluggable handlers: the brief's retry, caching, rate-limit and monitoring handlers.

    python examples/custom_handlers.py

Handlers registered on an engine apply to tasks that name them (``@task(handler=...)``);
a handler installed as a plugin needs no registration at all (see README, "Plugins").
"""

import logging
import time

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler

logger = logging.getLogger(__name__)


class RetryHandler(TaskHandler):
    def __init__(self, max_retries=3):
        self.max_retries = max_retries

    def execute_task(self, task, context):
        for attempt in range(self.max_retries):
            try:
                result = task.run()
                context.set_result(task.task_id, result)
                return
            except Exception:
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
        except Exception:
            status = "failed"
            raise
        finally:
            self.metrics.append({"task": task.task_id, "duration": time.time() - start, "status": status})


attempts = {"flaky": 0}

with workflow("handlers") as handlers:

    @task(handler="retry")
    def flaky() -> str:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("upstream hiccup")
        return f"ok after {attempts['flaky']} attempts"

    @task(handler="cache")
    def expensive_lookup() -> int:
        return sum(i * i for i in range(10_000))

    @task(handler="ratelimit")
    def call_api() -> str:
        return "called"

    @task(handler="monitor")
    def report() -> str:
        return "report written"

    flaky >> expensive_lookup >> call_api >> report


def build_engine() -> tuple[WorkflowEngine, MonitoringHandler]:
    engine = WorkflowEngine()
    monitor = MonitoringHandler()
    engine.register_handler("retry", RetryHandler(max_retries=3))
    engine.register_handler("cache", CachingHandler())
    engine.register_handler("ratelimit", RateLimitHandler(min_interval=0.05))
    engine.register_handler("monitor", monitor)
    return engine, monitor


if __name__ == "__main__":
    engine, monitor = build_engine()
    result, ctx = handlers.execute(engine=engine, ret_context=True)
    print(result, ctx.get_result("flaky"), monitor.metrics)
