"""A Redis Cluster of one test's own: three primaries, a replica each, to kill a primary mid-run.

Six ``redis-server --cluster-enabled yes`` on free loopback ports of the range given (the
cluster suite uses 7120-7139), joined by ``redis-cli --cluster create --cluster-replicas 1``,
with a one-second ``cluster-node-timeout`` so that a killed primary's replica takes over
within a few seconds. Every node keeps its files in the test's folder and is killed on exit.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.support.ports import free_ports
from tests.support.redis_server import PrivateRedis
from tests.support.services import missing
from tests.support.waiting import wait_until


@dataclass
class PrivateCluster:
    """Six nodes, three primaries with a replica each, every slot covered."""

    nodes: list[PrivateRedis]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL Graflow connects with (every node: any one would do)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes) + "/0"

    def primary_of(self, key: str) -> PrivateRedis:
        """The node that serves ``key``'s slot now."""
        slot = key_slot(key.encode())
        for node in self.alive():
            client = _admin(node)
            try:
                for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        return self._node(int(primary[1]))
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise AssertionError(f"no node serves slot {slot}")

    def replica_of(self, primary: PrivateRedis) -> PrivateRedis:
        """The node that replicates ``primary``."""
        client = _admin(primary)
        try:
            replicas = client.info("replication")
        finally:
            client.close()
        return self._node(int(replicas["slave0"]["port"]))

    def wait_promoted(self, node: PrivateRedis, timeout: float) -> None:
        """Until ``node`` is a primary, every live node sees the cluster whole, every replica is in sync."""

        def whole() -> bool:
            for alive in self.alive():
                client = _admin(alive)
                try:
                    if alive is node and client.role()[0] != "master":
                        return False
                    if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                        return False
                    replication = client.info("replication")
                    if replication["role"] == "slave" and replication["master_link_status"] != "up":
                        return False  # a replica that never synced cannot take over
                except redis.RedisError:
                    return False
                finally:
                    client.close()
            return True

        wait_until(whole, timeout, f"node {node.port} to take over its primary's slots")

    def alive(self) -> list[PrivateRedis]:
        return [node for node in self.nodes if node.process is not None]

    def _node(self, port: int) -> PrivateRedis:
        return next(node for node in self.nodes if node.port == port)


@contextmanager
def start_cluster(directory: Path, *, ports: Iterable[int]) -> Iterator[PrivateCluster]:
    """A started :class:`PrivateCluster` on free ports of ``ports``, every node killed on exit.

    Without ``redis-server`` or ``redis-cli`` on the PATH, the test is skipped (failed under ``CI=true``).
    """
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            missing(
                f"{binary} is not installed (apt-get install redis-server; redis-cli creates the cluster)"
            )
    free = free_ports(ports)
    with ExitStack() as stack:
        nodes = []
        for _ in range(6):
            port = next(free)
            folder = directory / f"node-{port}"
            folder.mkdir()
            options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-config-file",
                       str(folder / "nodes.conf"))  # fmt: skip
            node = PrivateRedis(port, folder, options=options)
            stack.callback(node.kill)
            node.start()
            nodes.append(node)
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster = PrivateCluster(nodes)
        cluster.wait_promoted(nodes[0], 30)  # the first node is a primary: wait until all is ok
        yield cluster


def _admin(node: PrivateRedis) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=1, decode_responses=True)
