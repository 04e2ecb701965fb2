"""The HTTP routes: the JSON API (``/api/...``), its live streams, and the pages that use them."""

from __future__ import annotations

from fastapi import Request

from graflow_ui.dashboard import Dashboard

__all__ = ["dashboard"]


def dashboard(request: Request) -> Dashboard:
    """The app's :class:`Dashboard` (a dependency of every route)."""
    found: Dashboard = request.app.state.dashboard
    return found
