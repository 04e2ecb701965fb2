"""A Redis primary, its replica and three sentinels of one test's own, to fail over mid-run.

Every server listens on a free loopback port of the range given (the Sentinel suite uses
7100-7119), keeps its files in the test's folder, and is killed on exit. Sentinels run
``redis-server CONF --sentinel`` (what the ``redis-sentinel`` binary is), with a one-second
``down-after-milliseconds`` so that a killed primary is replaced within a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.ports import free_ports
from tests.support.redis_server import PrivateRedis
from tests.support.services import missing, ping_redis
from tests.support.waiting import wait_until

#: The name the sentinels monitor the primary under.
SERVICE = "graflow-test"


@dataclass
class SentinelSet:
    """A primary and a replica watched by three sentinels (quorum 2)."""

    primary: PrivateRedis
    replica: PrivateRedis
    sentinel_ports: list[int]
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL Graflow connects with."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_port(self) -> int | None:
        """The port of the primary as the first sentinel that answers sees it, or None."""
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if address:
                return int(address[1])
        return None

    def wait_failover(self, timeout: float) -> int:
        """Wait until the sentinels promoted the replica and it takes writes; its port."""

        def promoted() -> bool:
            if self.primary_port() != self.replica.port:
                return False
            client = redis.Redis(port=self.replica.port, socket_timeout=1, decode_responses=True)
            try:
                return bool(client.role()[0] == "master")
            except redis.RedisError:
                return False
            finally:
                client.close()

        wait_until(promoted, timeout, f"the sentinels to promote the replica on port {self.replica.port}")
        return self.replica.port

    def start_sentinel(self, port: int, directory: Path) -> None:
        conf = directory / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.sentinels.append(
            subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def wait_ready(self, timeout: float) -> None:
        """Until the replica is in sync and every sentinel knows it and the two other sentinels."""

        def ready() -> bool:
            replica = redis.Redis(port=self.replica.port, socket_timeout=1, decode_responses=True)
            try:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
            except redis.RedisError:
                return False
            finally:
                replica.close()
            for port in self.sentinel_ports:
                sentinel = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                try:
                    if not sentinel.sentinel_slaves(SERVICE) or len(sentinel.sentinel_sentinels(SERVICE)) < 2:
                        return False
                except redis.RedisError:
                    return False
                finally:
                    sentinel.close()
            return True

        wait_until(ready, timeout, "the replica and the three sentinels to know each other")

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait(10)
        self.sentinels.clear()


@contextmanager
def start_sentinel_set(directory: Path, *, ports: Iterable[int]) -> Iterator[SentinelSet]:
    """A started :class:`SentinelSet` on free ports of ``ports``, every server killed on exit.

    Without ``redis-server`` on the PATH, the test is skipped (failed under ``CI=true``).
    """
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install redis-server; it runs the sentinels too)")
    free = free_ports(ports)
    with ExitStack() as stack:
        primary = PrivateRedis(next(free), _folder(directory, "primary"))
        stack.callback(primary.kill)
        primary.start()
        replica_of = ("--replicaof", "127.0.0.1", str(primary.port))
        replica = PrivateRedis(next(free), _folder(directory, "replica"), options=replica_of)
        stack.callback(replica.kill)
        replica.start()
        servers = SentinelSet(primary, replica, [next(free) for _ in range(3)])
        stack.callback(servers.stop)
        for sentinel_port in servers.sentinel_ports:
            servers.start_sentinel(sentinel_port, directory)
        for sentinel_port in servers.sentinel_ports:
            url = f"redis://127.0.0.1:{sentinel_port}/0"
            wait_until(lambda url=url: ping_redis(url), 10, f"the sentinel on port {sentinel_port}")
        servers.wait_ready(30)
        yield servers


def _folder(directory: Path, name: str) -> Path:
    folder = directory / name
    folder.mkdir(exist_ok=True)
    return folder
