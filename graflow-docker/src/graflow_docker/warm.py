"""Warm containers (``reuse=True``): long-lived containers that run envelopes one after another.

Starting a container costs most of a Docker task's overhead; a warm container pays it
once. Each one runs :data:`~graflow_docker.runtime.WARM_SCRIPT`, connected to this
process by a Unix socket in its exchange directory (so it works with
``network_mode="none"``). A handler keeps a small pool: a task takes an idle
container or starts one, and gives it back when done. A container whose task
failed to report (killed, timed out, interrupted) is removed, never reused.

The price is isolation *between tasks*: tasks of one handler share a Python process,
its imported modules, environment and files.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from graflow_docker.container import (
    ContainerSpec,
    create,
    describe_failure,
    exit_of,
    remove_quietly,
    running,
    start,
)
from graflow_docker.exceptions import ContainerFailedError, ContainerTimeoutError
from graflow_docker.stream import OutputLog

__all__ = ["WarmContainer", "WarmPool"]

#: How long a new warm container may take to connect back.
_CONNECT_SECONDS: Final = 60.0
#: How long to wait for a task's last output lines after its outcome arrived.
_OUTPUT_SECONDS: Final = 5.0
SOCKET_NAME: Final = "sock"


class WarmContainer:
    """One warm container and its connection."""

    def __init__(
        self, api: Any, io_dir: Path, container_id: str, output: OutputLog, conn: socket.socket
    ) -> None:
        self.api = api
        self.io_dir = io_dir
        self.container_id = container_id
        self.output = output
        self._conn = conn
        self._seq = 0

    @classmethod
    def start(cls, api: Any, make_spec: Callable[[Path], ContainerSpec], image: str) -> WarmContainer:
        """Start a container and wait until its loop has connected."""
        io_dir = Path(tempfile.mkdtemp(prefix="graflow-docker-warm-"))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        container_id: str | None = None
        try:
            listener.bind(str(io_dir / SOCKET_NAME))
            listener.listen(1)
            spec = make_spec(io_dir)
            what = f"a warm container (image {image!r})"
            container_id = create(api, spec, what)
            output = OutputLog(None, image=image)
            frames = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            threading.Thread(
                target=output.pump, args=(frames,), name=f"graflow-docker-{container_id[:12]}", daemon=True
            ).start()
            start(api, container_id, what, image)
            conn = _accept(listener, api, container_id, output, what)
            return cls(api, io_dir, container_id, output, conn)
        except BaseException:
            if container_id is not None:
                remove_quietly(api, container_id)
            shutil.rmtree(io_dir, ignore_errors=True)
            raise
        finally:
            listener.close()

    def run(
        self,
        task_id: str,
        payload: bytes,
        traceparent: str | None,
        timeout: float | None,
        what: str,
        mem_limit: object,
    ) -> bytes:
        """Send one envelope, wait for its outcome. Any exception leaves the container unusable."""
        self._seq += 1
        header = json.dumps({"seq": self._seq, "task_id": task_id, "traceparent": traceparent}).encode()
        self._conn.settimeout(None)
        self._conn.sendall(struct.pack("!II", len(header), len(payload)) + header + payload)
        self._conn.settimeout(timeout)
        try:
            head = _read(self._conn, 8)
            answer = _read(self._conn, struct.unpack("!Q", head)[0]) if head is not None else None
        except TimeoutError as exc:
            raise ContainerTimeoutError(
                f"{what} did not finish within timeout={timeout:g}s; its warm container was stopped and "
                "removed. Raise the handler's timeout if the task needs longer."
            ) from exc
        if answer is None:
            raise describe_failure(what, exit_of(self.api, self.container_id), self.output.tail(), mem_limit)
        self.output.wait_done(self._seq, _OUTPUT_SECONDS)
        return answer

    def close(self) -> None:
        """Close the connection (the loop ends), remove the container and the exchange directory."""
        try:
            self._conn.close()
        finally:
            remove_quietly(self.api, self.container_id)
            shutil.rmtree(self.io_dir, ignore_errors=True)


class WarmPool:
    """Idle warm containers of one handler; thread-safe."""

    def __init__(self) -> None:
        self._idle: list[WarmContainer] = []
        self._busy: set[WarmContainer] = set()
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, factory: Callable[[], WarmContainer]) -> WarmContainer:
        with self._lock:
            if self._idle:
                container = self._idle.pop()
                self._busy.add(container)
                return container
        container = factory()
        with self._lock:
            self._busy.add(container)
        return container

    def release(self, container: WarmContainer) -> None:
        """Give a container back after a task that reported its outcome."""
        with self._lock:
            self._busy.discard(container)
            if not self._closed:
                self._idle.append(container)
                return
        container.close()

    def discard(self, container: WarmContainer) -> None:
        """Remove a container whose task did not end cleanly."""
        with self._lock:
            self._busy.discard(container)
        container.close()

    def close(self) -> None:
        """Remove every idle container; busy ones are removed when their task ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for container in idle:
            container.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy)


def _accept(
    listener: socket.socket, api: Any, container_id: str, output: OutputLog, what: str
) -> socket.socket:
    """The container's connection; fail fast if it dies before connecting."""
    listener.settimeout(0.25)
    deadline = time.monotonic() + _CONNECT_SECONDS
    while True:
        try:
            conn, _ = listener.accept()
            return conn
        except TimeoutError:
            if not running(api, container_id):
                exit = exit_of(api, container_id)
                raise ContainerFailedError(
                    f"{what} exited with status {exit.exit_code} before it was ready:\n{output.tail()}",
                    exit_code=exit.exit_code,
                    stderr_tail=output.tail(),
                ) from None
            if time.monotonic() > deadline:
                raise ContainerFailedError(
                    f"{what} did not connect back within {_CONNECT_SECONDS:g}s:\n{output.tail()}"
                ) from None


def _read(conn: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = conn.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
