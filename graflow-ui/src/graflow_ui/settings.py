"""What one dashboard serves, and how: the store it reads, its token, where launched runs log."""

from __future__ import annotations

import ipaddress
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ENV_TOKEN", "UISettings", "is_loopback"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8265
#: The environment variable that stands in for ``--token``.
ENV_TOKEN: Final = "GRAFLOW_UI_TOKEN"


@dataclass(frozen=True)
class UISettings:
    """One dashboard over one store.

    ``store_config`` is what :func:`graflow.state.opening.store_for` reads:
    ``{"state_dir": DIR}`` or ``{"redis_url": URL, "key_prefix": P}``.
    """

    store_config: dict[str, Any] = field(default_factory=dict)
    #: With a token, every request needs it (``Authorization: Bearer``, or the login cookie).
    token: str | None = None
    #: Where it listens: only loopback names are trusted in the ``Host`` header unless a token is set.
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Where the output of the ``graflow resume``/``rerun`` processes it starts is written.
    log_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "graflow-ui")
    #: Seconds between two looks at the store for the live views (the stores have no change feed).
    poll_interval: float = 1.0
    #: Seconds between two samples of queue depth, and how many samples are kept.
    depth_interval: float = 5.0
    depth_samples: int = 180

    @property
    def url(self) -> str:
        """The address people open (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
