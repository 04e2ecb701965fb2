"""The distribution's version, in one place for ``__version__`` and the tracer's scope."""

from __future__ import annotations

from typing import Final

VERSION: Final = "0.3.0"
