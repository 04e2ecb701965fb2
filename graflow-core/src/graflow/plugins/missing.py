"""Which distribution provides which name, to word "not installed" errors.

This is the one place where the kernel names its sibling distributions, and it is only
used to tell a user what to ``pip install``; nothing here is imported or called.
"""

from __future__ import annotations

from typing import Final

#: Plugin-provided names (handlers, backends, coordinators) -> the pip package providing them.
PACKAGE_FOR_NAME: Final[dict[str, str]] = {
    "docker": "graflow-docker",
    "redis": "graflow-redis",
}

#: Entry-point names -> pip package, for reporting a plugin that failed to import.
PACKAGE_FOR_ENTRY_POINT: Final[dict[str, str]] = {
    "redis": "graflow-redis",
    "worker": "graflow-worker",
    "docker": "graflow-docker",
    "otel": "graflow-otel",
}
