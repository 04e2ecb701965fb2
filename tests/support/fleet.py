"""Real ``graflow-worker`` processes for a test: started from an empty folder, killed at teardown.

Started from a folder the test code is not importable from, a worker can run a task only
if its function travelled by value, as it would on another machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.reports import call_failed
from tests.support.waiting import wait_until


def worker_command() -> list[str]:
    """The installed console script when there is one, else ``python -m graflow_worker``."""
    script = Path(sys.executable).with_name("graflow-worker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graflow_worker"]


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


def stop_fleet(fleet: Fleet, request: pytest.FixtureRequest) -> None:
    """Kill ``fleet``'s workers at teardown, printing their logs when the test failed."""
    fleet.kill_all()
    if call_failed(request):
        sys.stderr.write(fleet.logs())
