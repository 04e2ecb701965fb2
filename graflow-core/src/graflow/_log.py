"""Logging entry point for library code: structlog, imported on first use only."""

from __future__ import annotations

from typing import Any


def get_logger(name: str = "graflow", **bound: Any) -> Any:
    """A structlog logger (stdlib-compatible); structlog is imported lazily to keep ``import graflow`` fast."""
    import structlog

    return structlog.get_logger(name, **bound)
