"""User code travels by value; installed packages by reference.

The worker here is a separate Python process started from an empty directory, so it
cannot import the user's modules written by the test: they must arrive inside the task.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from graflow.core.task import TaskWrapper
from graflow.remote.codec import ByValue
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.queue import DistributedTaskQueue
from tests.support.waiting import wait_until

WORKER = textwrap.dedent(
    """
    import sys
    from graflow.remote.runner import run_envelope
    from graflow_redis.queue import DistributedTaskQueue

    queue = DistributedTaskQueue(redis_url=sys.argv[1], key_prefix=sys.argv[2])
    while True:
        queue.heartbeat("process-worker", {"pid": __import__("os").getpid()})
        for delivery in queue.fetch("process-worker", count=4, block=0.2):
            queue.complete(delivery, run_envelope(delivery.envelope))
    """
)


@pytest.fixture
def user_modules(tmp_path: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    """Two modules of "the user's project": tasks, and helpers the tasks import."""
    tag = uuid.uuid4().hex[:8]
    project = tmp_path / "project"
    project.mkdir()
    (project / f"shop_helpers_{tag}.py").write_text("def twice(x):\n    return 2 * x\n")
    (project / f"shop_tasks_{tag}.py").write_text(
        textwrap.dedent(
            f"""
            from dataclasses import dataclass

            import shop_helpers_{tag} as helpers
            from shop_helpers_{tag} import twice


            class StockError(ValueError):
                pass


            @dataclass
            class Receipt:
                total: int


            def price():
                return Receipt(twice(5) + helpers.twice(1))


            def sell():
                raise StockError("sold out")
            """
        )
    )
    sys.path.insert(0, str(project))
    try:
        tasks = __import__(f"shop_tasks_{tag}")
        yield tasks, sys.modules[f"shop_helpers_{tag}"]
    finally:
        sys.path.remove(str(project))


@pytest.fixture
def process_worker(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[DistributedTaskQueue]:
    empty = tmp_path / "worker-cwd"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, redis_url, key_prefix],
        cwd=empty,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    queue = DistributedTaskQueue(redis_url=redis_url, key_prefix=key_prefix)
    try:
        wait_until(lambda: process.poll() is not None or queue.workers(), 30, "the worker process")
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        yield queue
    finally:
        queue.close()
        process.kill()
        process.wait(10)


def test_the_users_own_modules_are_user_code_and_installed_ones_are_not(
    user_modules: tuple[ModuleType, ModuleType],
) -> None:
    tasks, helpers = user_modules
    is_user_module = ByValue("a worker").is_user_module
    assert is_user_module(tasks.__name__)
    assert is_user_module(helpers.__name__)
    assert is_user_module(__name__)  # this test module: a script of the project, not installed
    for installed in (
        "json",
        "collections.abc",
        "redis",
        "cloudpickle",
        "graflow.core.task",
        "graflow_redis",
    ):
        assert not is_user_module(installed), installed
    assert not is_user_module("__main__")  # cloudpickle already ships __main__ by value


def test_a_task_from_a_module_the_worker_cannot_import_runs_there(
    user_modules: tuple[ModuleType, ModuleType], process_worker: DistributedTaskQueue
) -> None:
    tasks, _ = user_modules
    future = process_worker.submit(
        TaskEnvelope(TaskWrapper("price", tasks.price, register=False), "run", "wf")
    )
    outcome = future.result(timeout=30)
    assert outcome.success, outcome.remote_traceback
    assert outcome.result == tasks.Receipt(12)
    assert type(outcome.result) is tasks.Receipt  # the driver's own class, not a look-alike
    assert outcome.worker.split(":")[1] != str(os.getpid())


def test_a_user_exception_raised_on_the_worker_is_the_drivers_own_class(
    user_modules: tuple[ModuleType, ModuleType], process_worker: DistributedTaskQueue
) -> None:
    tasks, _ = user_modules
    future = process_worker.submit(TaskEnvelope(TaskWrapper("sell", tasks.sell, register=False), "run", "wf"))
    outcome = future.result(timeout=30)
    assert not outcome.success
    with pytest.raises(tasks.StockError, match="sold out"):
        outcome.raise_error()


def test_closures_and_lambdas_travel_with_their_values(process_worker: DistributedTaskQueue) -> None:
    rate = 1.5
    items: dict[str, Any] = {"apples": 4}
    future = process_worker.submit(
        TaskEnvelope(TaskWrapper("bill", lambda: items["apples"] * rate, register=False), "run", "wf")
    )
    assert future.result(timeout=30).result == 6.0
