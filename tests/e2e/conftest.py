"""End-to-end fixtures: the real Redis, real ``graflow-worker`` processes, a private Redis to break.

* ``redis_url``: the shared server at 127.0.0.1:6379. Missing: skip, or fail when CI=true.
* ``key_prefix``: unique per test; every key under it is deleted at teardown.
* ``fleet``: starts ``graflow-worker`` processes (from an empty directory, so the test code
  is not importable there: task functions must travel by value) and kills them at teardown,
  printing their logs when the test failed.
* ``private_redis``: a ``redis-server`` of the test's own on a free loopback port (6392+),
  with an append-only file so it can be restarted mid-run without losing the queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.e2e_support import REDIS_HOST, REDIS_PORT, worker_command
from tests.support.redis_keys import delete_prefix
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.services import require_redis
from tests.support.waiting import wait_until


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis(REDIS_HOST, REDIS_PORT)


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"e2e-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@dataclass
class WorkerProcess:
    worker_id: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@dataclass
class Fleet:
    """Starts and tracks worker processes for one test."""

    redis_url: str
    key_prefix: str
    workdir: Path
    visibility_timeout: float = 2.0
    processes: list[WorkerProcess] = field(default_factory=list)

    def queue(self, **options: Any) -> Any:
        from graflow_redis.queue import DistributedTaskQueue

        return DistributedTaskQueue(
            redis_url=self.redis_url,
            key_prefix=self.key_prefix,
            visibility_timeout=self.visibility_timeout,
            **options,
        )

    def start(
        self,
        worker_id: str | None = None,
        *args: str,
        wait: bool = True,
        env: dict[str, str] | None = None,
        redis_url: str | None = None,
    ) -> WorkerProcess:
        worker_id = worker_id or f"w{len(self.processes) + 1}-{uuid.uuid4().hex[:6]}"
        log_path = self.workdir / f"{worker_id}.log"
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRAFLOW_SECRET_KEY")}
        environ.update(env or {})
        command = [
            *worker_command(),
            "--redis-url",
            redis_url or self.redis_url,
            "--key-prefix",
            self.key_prefix,
            "--worker-id",
            worker_id,
            "--visibility-timeout",
            str(self.visibility_timeout),
            "--heartbeat-interval",
            "0.5",
            "--log-format",
            "json",
            *args,
        ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=self.workdir, env=environ, stdout=log, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(worker_id, process, log_path)
        self.processes.append(worker)
        if wait:
            self.wait_live(worker_id)
        return worker

    def live_ids(self) -> set[str]:
        try:
            return {str(w.get("worker_id")) for w in self.queue().workers()}
        except Exception:
            return set()

    def wait_live(self, *worker_ids: str, timeout: float = 30.0) -> None:
        def live() -> bool:
            for worker in self.processes:
                if worker.worker_id in worker_ids and worker.process.poll() is not None:
                    raise AssertionError(f"worker {worker.worker_id} exited early:\n{worker.log()}")
            return set(worker_ids) <= self.live_ids()

        wait_until(live, timeout, f"workers {worker_ids} to heartbeat")

    def kill_all(self) -> None:
        for worker in self.processes:
            if worker.process.poll() is None:
                worker.process.kill()
            try:
                worker.process.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        return "\n".join(f"--- {w.worker_id} (pid {w.pid}) ---\n{w.log()}" for w in self.processes)


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    fleet = Fleet(redis_url, key_prefix, tmp_path_factory.mktemp("fleet"))
    yield fleet
    fleet.kill_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(fleet.logs())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with start_private_redis(
        tmp_path_factory.mktemp("redis"), ports=range(6392, 6499), append_only=True
    ) as server:
        yield server
