"""Warm containers (``reuse=True``): long-lived containers that run envelopes one after another.

Starting a container costs most of a Docker task's overhead; a warm container pays it
once. Each one runs :data:`~graflow_docker.runtime.WARM_SCRIPT`, connected to this
process by the three Unix sockets of :data:`~graflow_docker.runtime.WARM_SOCKETS` in
its exchange directory (so it works with ``network_mode="none"``): envelopes and
outcomes travel on one, and the loop makes the other two its stdout and stderr. What a
task prints is therefore only ever output: it cannot pose as an outcome or hide one,
and once an outcome has arrived, everything the task printed before is readable here.
A handler keeps a small pool: a task takes an idle container or starts one, and gives
it back when done. A container whose task failed to report (killed, timed out,
interrupted) is removed, never reused.

The price is isolation *between tasks*: tasks of one handler share a Python process,
its imported modules, environment and files.
"""

from __future__ import annotations

import json
import selectors
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
from graflow_docker.runtime import WARM_SOCKETS
from graflow_docker.sandbox import check_size
from graflow_docker.stream import OutputLog

__all__ = ["WarmContainer", "WarmPool"]

#: How long a new warm container may take to connect back.
_CONNECT_SECONDS: Final = 60.0
_CHUNK: Final = 1 << 20
#: Most output passed on in one go after an outcome: what the task printed before it is
#: already queued; this only stops a task that keeps printing from holding up its result.
_PASS_ON_BYTES: Final = 16 * _CHUNK
_HEAD: Final = struct.Struct("!Q")


class WarmContainer:
    """One warm container and its connections."""

    def __init__(
        self,
        api: Any,
        io_dir: Path,
        container_id: str,
        image: str,
        control: socket.socket,
        streams: dict[str, socket.socket],
    ) -> None:
        self.api = api
        self.io_dir = io_dir
        self.container_id = container_id
        self.image = image
        self._control = control
        #: ``"stdout"`` and ``"stderr"``: the loop's file descriptors 1 and 2, non-blocking here.
        self._streams = streams

    @classmethod
    def start(cls, api: Any, make_spec: Callable[[Path], ContainerSpec], image: str) -> WarmContainer:
        """Start a container and wait until its loop has connected."""
        io_dir = Path(tempfile.mkdtemp(prefix="graflow-docker-warm-"))
        listeners: list[socket.socket] = []
        connections: list[socket.socket] = []
        container_id: str | None = None
        try:
            for name in WARM_SOCKETS:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listeners.append(listener)
                listener.bind(str(io_dir / name))
                listener.listen(1)
            spec = make_spec(io_dir)
            what = f"a warm container (image {image!r})"
            container_id = create(api, spec, what)
            # Until its loop has connected, the container's own output (an import error) goes here.
            output = OutputLog(None, image=image)
            frames = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            threading.Thread(
                target=output.pump, args=(frames,), name=f"graflow-docker-{container_id[:12]}", daemon=True
            ).start()
            start(api, container_id, what, image)
            for listener in listeners:
                connections.append(_accept(listener, api, container_id, output, what))
            streams = dict(zip(WARM_SOCKETS, connections, strict=True))
            control = streams.pop("control")
            for stream in streams.values():
                stream.setblocking(False)
            return cls(api, io_dir, container_id, image, control, streams)
        except BaseException:
            for connection in connections:
                connection.close()
            if container_id is not None:
                remove_quietly(api, container_id)
            shutil.rmtree(io_dir, ignore_errors=True)
            raise
        finally:
            for listener in listeners:
                listener.close()

    def run(
        self,
        task_id: str,
        payload: bytes,
        traceparent: str | None,
        *,
        timeout: float | None,
        what: str,
        mem_limit: object,
        limit: int | None,
    ) -> bytes:
        """Send one envelope, log the task's output as it comes, return its outcome's bytes.

        ``limit`` bounds the outcome's size, checked before it is read (``sandbox=True``).
        Any exception leaves the container unusable.
        """
        # Output of an earlier task's leftovers (a subprocess still printing) is not this task's.
        self._pass_on(OutputLog(None, image=self.image))
        header = json.dumps({"task_id": task_id, "traceparent": traceparent}).encode()
        self._control.setblocking(True)
        self._control.sendall(struct.pack("!II", len(header), len(payload)) + header + payload)
        output = OutputLog(task_id, image=self.image)
        try:
            answer = self._receive(output, timeout, what, limit)
            self._pass_on(output)
        finally:
            output.close()
        if answer is None:
            raise describe_failure(what, exit_of(self.api, self.container_id), output.tail(), mem_limit)
        return answer

    def close(self) -> None:
        """Close the connections (the loop ends), remove the container and the exchange directory."""
        try:
            for connection in (self._control, *self._streams.values()):
                connection.close()
        finally:
            remove_quietly(self.api, self.container_id)
            shutil.rmtree(self.io_dir, ignore_errors=True)

    def _receive(
        self, output: OutputLog, timeout: float | None, what: str, limit: int | None
    ) -> bytes | None:
        """Log output until the outcome frame is complete; ``None`` if the container went away first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        frame = bytearray()
        size: int | None = None
        self._control.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(self._control, selectors.EVENT_READ)
            for name, connection in self._streams.items():
                selector.register(connection, selectors.EVENT_READ, name)
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise ContainerTimeoutError(
                        f"{what} did not finish within timeout={timeout:g}s; its warm container was stopped "
                        "and removed. Raise the handler's timeout if the task needs longer."
                    )
                for key, _ in selector.select(wait):
                    stream: str | None = key.data
                    if stream is not None:
                        chunk = _recv(self._streams[stream], _CHUNK)
                        if chunk:
                            output.feed(stream, chunk)
                        elif chunk is not None:
                            selector.unregister(key.fileobj)
                        continue
                    chunk = _recv(self._control, min(_HEAD.size + (size or 0) - len(frame), _CHUNK))
                    if chunk == b"":
                        return None
                    frame += chunk or b""
                    if size is None and len(frame) == _HEAD.size:
                        (size,) = _HEAD.unpack(frame)
                        if limit is not None:
                            check_size(size, limit, what)
                    if size is not None and len(frame) == _HEAD.size + size:
                        return bytes(frame[_HEAD.size :])

    def _pass_on(self, output: OutputLog) -> None:
        """Log what the output sockets hold now, without waiting for more."""
        for stream, connection in self._streams.items():
            passed = 0
            while passed < _PASS_ON_BYTES:
                chunk = _recv(connection, _CHUNK)
                if not chunk:
                    break
                output.feed(stream, chunk)
                passed += len(chunk)


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


def _recv(connection: socket.socket, n: int) -> bytes | None:
    """Up to ``n`` bytes; ``b""`` at the end of the stream, ``None`` if none are there yet."""
    try:
        return connection.recv(n)
    except (BlockingIOError, InterruptedError):
        return None
    except ConnectionError:
        return b""
