"""An in-test worker for the graflow-redis tests, built only from the queue's worker-side API."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from graflow.remote.runner import run_envelope
from graflow_redis.connection import CONNECTION_ERRORS
from graflow_redis.queue import Delivery, DistributedTaskQueue


class ThreadWorker:
    """A worker from the contract's worker-side API only: fetch, run, complete; heartbeats.

    Runs up to ``concurrency`` tasks at once on a thread pool; survives Redis outages by
    retrying with backoff, like a real worker.
    """

    def __init__(self, queue: DistributedTaskQueue, worker_id: str = "thread-worker", concurrency: int = 4):
        self.queue = queue
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.completed: list[tuple[str, bool]] = []  # (task id, recorded)
        self._running: dict[str, Delivery] = {}
        self._lock = threading.Lock()
        self._free = threading.Semaphore(concurrency)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"worker-{worker_id}")
        self._threads = [
            threading.Thread(target=self._fetch_loop, daemon=True),
            threading.Thread(target=self._heartbeat_loop, daemon=True),
        ]

    def start(self) -> ThreadWorker:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        try:
            self.queue.remove_worker(self.worker_id)
        except redis.RedisError:
            pass

    def _fetch_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            if not self._free.acquire(timeout=0.2):
                continue
            try:
                deliveries = self.queue.fetch(self.worker_id, count=1, block=0.2)
                backoff = 0.05
            except CONNECTION_ERRORS:
                self._free.release()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            if not deliveries:
                self._free.release()
                continue
            for delivery in deliveries:
                with self._lock:
                    self._running[delivery.entry_id] = delivery
                self._pool.submit(self._run, delivery)

    def _run(self, delivery: Delivery) -> None:
        try:
            outcome = run_envelope(delivery.envelope)
            while True:
                try:
                    recorded = self.queue.complete(delivery, outcome)
                    break
                except CONNECTION_ERRORS:
                    time.sleep(0.1)
            with self._lock:
                self.completed.append((delivery.envelope.task_id, recorded))
        finally:
            with self._lock:
                self._running.pop(delivery.entry_id, None)
            self._free.release()

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    running = list(self._running.values())
                if running:
                    self.queue.keep_alive(running)
                self.queue.heartbeat(self.worker_id, {"running": [d.envelope.task_id for d in running]})
            except CONNECTION_ERRORS:
                pass
            self._stop.wait(0.2)
