"""Free loopback ports, for servers a test starts (redis-server, metrics) or expects to find closed."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator


def free_port(preferred: Iterable[int] = ()) -> int:
    """A port of 127.0.0.1 that nobody listens on: the first free one of ``preferred``, else any.

    ``preferred`` keeps the servers of one suite in a range of their own, so suites run side
    by side rarely pick the same port::

        port = free_port(range(6381, 6392))
    """
    for port in [*preferred, 0]:
        with socket.socket() as sock:
            # Like redis-server and http.server: a port whose old connections linger in
            # TIME_WAIT is usable, so it counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def free_ports(allowed: Iterable[int]) -> Iterator[int]:
    """Free ports of ``allowed`` only, each once: for a test that starts several servers in a range.

    Raises ``RuntimeError`` when the range has no free port left, rather than go outside it::

        ports = free_ports(range(7100, 7120))
        primary, replica = next(ports), next(ports)
    """
    ports = list(allowed)
    left = ports
    while True:
        port = free_port(left)
        if port not in left:
            raise RuntimeError(f"no free port left on 127.0.0.1 between {min(ports)} and {max(ports)}")
        left = left[left.index(port) + 1 :]
        yield port
