"""Who drives a run: a lease held by one process, renewed while it runs.

A store keeps the holder (``host:pid``) and when its lease runs out; a resume is refused
while the lease is fresh and its holder may be alive. A holder on this host whose process
is gone has no lease, whatever the clock says, so a killed driver's run can be resumed at once.
"""

from __future__ import annotations

import os
import socket
from typing import Final

from graflow.remote.envelope import worker_name

__all__ = ["LEASE_SECONDS", "holder_alive", "this_holder"]

#: Seconds a lease lasts without renewal; holders renew it every third of that.
LEASE_SECONDS: Final = 15.0


def this_holder() -> str:
    """This process, as a lease holder: ``host:pid``."""
    return worker_name()


def holder_alive(holder: str) -> bool:
    """Whether the process named ``host:pid`` may still be running (always true on another host)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
