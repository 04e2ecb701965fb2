"""What an attacker who can write to Redis would write: pickles that run code when loaded.

Each forged pickle creates a marker file when it is unpickled, so a test proves that
nothing unpickled it by checking that the file does not exist::

    blob = marker_pickle(tmp_path / "pwned")
    ...  # write it where Graflow reads pickles from
    assert not (tmp_path / "pwned").exists()
"""

from __future__ import annotations

import ipaddress
import pickle
import socket
from pathlib import Path


class _CreatesFile:
    """Unpickles by calling ``exec``: the shape of every pickle exploit."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({self.path!r}, 'w').close()",))


def marker_pickle(path: Path) -> bytes:
    """A pickle that creates ``path`` when loaded (and loads as ``None``)."""
    return pickle.dumps(_CreatesFile(path))


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not on loopback, or ``None`` if it has none.

    A connected UDP socket sends nothing; it only makes the kernel pick the interface
    that routes to the target.
    """
    for target in ("192.0.2.1", "10.255.255.255", "172.16.255.255", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((target, 9))
            except OSError:
                continue
            address = str(sock.getsockname()[0])
        if not ipaddress.ip_address(address).is_loopback and address != "0.0.0.0":
            return address
    return None
