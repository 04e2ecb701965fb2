"""A redis-server of one test's own, which the test may stop, kill and start again.

The shared Redis at 127.0.0.1:6379 must never go down; tests about outages and restarts
use one of these instead, on a free loopback port, with its files in the test's folder.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.services import missing, ping_redis
from tests.support.waiting import wait_until


@dataclass
class PrivateRedis:
    """A redis-server on ``127.0.0.1:port`` that keeps its files in ``directory``.

    Without ``append_only`` nothing is persisted: once the server is gone, so is every key.
    With it, every write is synced to an append-only file (``appendfsync always``), so
    the data outlives a :meth:`stop` and even a :meth:`kill`.
    """

    port: int
    directory: Path
    append_only: bool = False
    #: Another address of this machine to listen on too (a test of a Redis that is not on loopback).
    also_bind: str | None = None
    #: The running server, or None while it is down.
    process: subprocess.Popen[bytes] | None = None
    #: More ``redis-server`` options (``("--replicaof", "127.0.0.1", "7100")``).
    options: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_at(self, host: str) -> str:
        """The URL through another address it listens on (:attr:`also_bind`)."""
        return f"redis://{host}:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        persistence = ["--appendonly", "no"]
        if self.append_only:
            persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        bind = ["127.0.0.1"]
        if self.also_bind:  # protected mode would refuse clients on the other address
            bind = [*bind, self.also_bind, "--protected-mode", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--bind", *bind, "--port", str(self.port), "--dir", str(self.directory),
             "--save", "", *persistence, *self.options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: ping_redis(self.url), 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM, which flushes the append-only file)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash would."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port."""
        self.kill()
        self.start()


@contextmanager
def start_private_redis(
    directory: Path, *, ports: Iterable[int] = (), append_only: bool = False, also_bind: str | None = None
) -> Iterator[PrivateRedis]:
    """A started :class:`PrivateRedis` on the first free port of ``ports``, stopped on exit.

    Without ``redis-server`` on the PATH, the test is skipped (failed under ``CI=true``)::

        @pytest.fixture
        def private_redis(tmp_path):
            with start_private_redis(tmp_path, ports=range(6381, 6392)) as server:
                yield server
    """
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis(free_port(ports), directory, append_only, also_bind)
    server.start()
    try:
        yield server
    finally:
        server.stop()
