"""Isolation that the options promise: no network with ``network_mode="none"``, memory capped by ``mem_limit``.

No packet leaves this machine: the only server reached is one on the host's loopback,
and the "outside" address is TEST-NET-1 (192.0.2.1), which a container without
network cannot even route to.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow_docker import ContainerMemoryError, DockerTaskHandler


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 that greets each client; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)

    def serve() -> None:
        try:
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.sendall(b"hello from the host")
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def reach(port: int) -> str:
    """Connect to 127.0.0.1:port and to an outside address; describe what happened."""
    import socket

    results = []
    for address in (("127.0.0.1", port), ("192.0.2.1", 80)):
        try:
            with socket.create_connection(address, timeout=3) as conn:
                results.append(conn.recv(100).decode())
        except OSError as exc:
            results.append(f"{type(exc).__name__}: errno {exc.errno}")
    return " | ".join(results)


def test_network_none_leaves_only_loopback_and_no_route_out(image, run, loopback_server: int) -> None:
    import errno

    with workflow("offline") as wf:

        @task(handler="sandbox")
        def probe(port: int) -> tuple[list[str], str]:
            import os

            return sorted(os.listdir("/sys/class/net")), reach(port)

    handler = DockerTaskHandler(image=image, network_mode="none")
    interfaces, outcome = run(wf, sandbox=handler, initial_channel={"port": loopback_server}).get_result(
        "probe"
    )
    assert interfaces == ["lo"]
    host_server, outside = outcome.split(" | ")
    assert host_server == f"ConnectionRefusedError: errno {errno.ECONNREFUSED}"
    assert outside == f"OSError: errno {errno.ENETUNREACH}"


def test_a_task_that_needs_the_network_fails_under_network_none(image, run, loopback_server: int) -> None:
    with workflow("needs_network") as wf:

        @task(handler="sandbox")
        def fetch(port: int) -> str:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
                return conn.recv(100).decode()

    with pytest.raises(ConnectionRefusedError) as info:
        run(
            wf,
            sandbox=DockerTaskHandler(image=image, network_mode="none"),
            initial_channel={"port": loopback_server},
        )
    assert info.value.graflow_task_id == "fetch"


def test_host_network_reaches_the_hosts_loopback(image, run, loopback_server: int) -> None:
    """The contrast: the same task, with the host's network, talks to the host's server."""
    with workflow("host_network") as wf:
        TaskWrapper("probe", lambda port: reach(port).split(" | ")[0], handler_type="docker")

    context = run(
        wf,
        docker=DockerTaskHandler(image=image, network_mode="host"),
        initial_channel={"port": loopback_server},
    )
    assert context.get_result("probe") == "hello from the host"


def test_allocating_past_mem_limit_is_a_task_failure(image, run, containers) -> None:
    with workflow("hungry") as wf:

        @task(handler="docker")
        def hungry() -> int:
            block = b"x" * (400 * 2**20)  # written, not just reserved
            return len(block)

        @task
        def after() -> str:
            return "never"

        hungry >> after

    handler = DockerTaskHandler(image=image, mem_limit="64m")
    with pytest.raises(MemoryError) as info:
        run(wf, docker=handler)
    assert isinstance(info.value, ContainerMemoryError)
    assert "mem_limit='64m'" in str(info.value)
    assert "Raise mem_limit" in str(info.value)
    assert info.value.exit_code == 137
    assert info.value.graflow_task_id == "hungry"


def test_allocation_within_mem_limit_succeeds(image, run) -> None:
    with workflow("modest") as wf:

        @task(handler="docker")
        def modest() -> int:
            return len(b"x" * (16 * 2**20))

    assert run(wf, docker=DockerTaskHandler(image=image, mem_limit="128m")).get_result("modest") == 16 * 2**20
