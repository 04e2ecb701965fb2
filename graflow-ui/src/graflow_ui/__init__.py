"""graflow-ui: a dashboard and JSON API over a Graflow state store (SPEC section 20).

``graflow ui`` serves it (:mod:`graflow_ui.cli`); :func:`create_app` builds the ASGI
application for embedding. The pages are drawn by small scripts shipped in the package
(``static/``) from the JSON API, so the dashboard works with no network.
"""

from __future__ import annotations

__version__ = "0.3.0"


def __getattr__(name: str) -> object:
    # lazy: `graflow --help` loads the plugin module, and must not pay for FastAPI
    if name == "create_app":
        from graflow_ui.app import create_app

        return create_app
    if name == "UISettings":
        from graflow_ui.settings import UISettings

        return UISettings
    raise AttributeError(f"module 'graflow_ui' has no attribute {name!r}")


__all__ = ["UISettings", "__version__", "create_app"]
