"""Logging entry point for library code: structlog over the standard library's logging.

A library must not decide where log lines go: unless the application configured
structlog itself, Graflow's loggers hand their events to :mod:`logging` (logger names
under ``graflow``), so ``logging.basicConfig`` or any handler the application installs
receives them, and nothing is printed to stdout by default. structlog is imported on
first use only, to keep ``import graflow`` fast.
"""

from __future__ import annotations

import logging
from typing import Any


def get_logger(name: str = "graflow", **bound: Any) -> Any:
    """A bound structlog logger named ``name``."""
    import structlog

    if structlog.is_configured():
        return structlog.get_logger(name, **bound)
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    ).bind(**bound)
