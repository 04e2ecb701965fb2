"""graflow-redis's log events, on the ``graflow.redis`` logger (structlog over stdlib logging)."""

from __future__ import annotations

from typing import Any

from graflow.log import get_logger

__all__ = ["emit"]


def emit(level: str, event: str, **fields: Any) -> None:
    """Log ``event`` at ``level``; the logger is looked up per event, so logging configured
    after import (an application's ``structlog.configure``, a test's ``capture_logs``) applies."""
    getattr(get_logger("graflow.redis"), level)(event, **fields)
