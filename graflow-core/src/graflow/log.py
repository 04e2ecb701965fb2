"""Logging for library code: structlog over the standard library's logging.

A library must not decide where log lines go: unless the application configured
structlog itself, Graflow's loggers hand their events to :mod:`logging` (logger names
under ``graflow``), so ``logging.basicConfig`` or any handler the application installs
receives them, and nothing is printed to stdout by default. Plugins log through
:func:`get_logger` too (it is part of :mod:`graflow.plugins`' author surface).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["get_logger"]


def get_logger(name: str = "graflow", **bound: Any) -> Any:
    """A bound structlog logger named ``name``.

    Look it up when logging rather than once at import: logging configured later (an
    application's ``structlog.configure``, a test's ``capture_logs``) then applies.
    """
    import structlog  # lazy: structlog costs ~70 ms to import, and most runs never log

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
