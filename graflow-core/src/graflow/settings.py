"""Settings every Graflow process reads the same way: their environment variables and their checks.

A driver (``graflow run``, ``wf.execute(...)``), a worker (``graflow-worker``) and the
store commands (``graflow runs``, ``resume``) agree on where Redis is and on the key
prefix only if they read the same variables with the same precedence: an explicit value
(a flag, a ``config`` key) wins over the variable, which wins over the default.

Numeric settings go through :func:`seconds` or :func:`whole`, so ``nan``, ``inf``, a
negative or a boolean value is refused with a :class:`~graflow.exceptions.ConfigError`
naming the setting, wherever it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Final

from graflow.exceptions import ConfigError

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "ENV_ALLOW_UNSIGNED",
    "ENV_KEY_PREFIX",
    "ENV_REDIS_URL",
    "ENV_SECRET_KEY",
    "ENV_STATE_DIR",
    "key_prefix",
    "seconds",
    "whole",
]

#: Where Redis is (a ``redis://`` URL).
ENV_REDIS_URL: Final = "REDIS_URL"
#: The prefix of every Redis key of a fleet; drivers and workers must agree.
ENV_KEY_PREFIX: Final = "GRAFLOW_KEY_PREFIX"
#: The HMAC key(s) that sign what is written to Redis (``new,old`` rotates).
ENV_SECRET_KEY: Final = "GRAFLOW_SECRET_KEY"
#: ``1``/``true``/``yes``: read unsigned pickles from a Redis that is not on loopback.
ENV_ALLOW_UNSIGNED: Final = "GRAFLOW_ALLOW_UNSIGNED"
#: Where durable runs of the memory queue are kept.
ENV_STATE_DIR: Final = "GRAFLOW_STATE_DIR"
#: The key prefix when neither config nor the environment names one.
DEFAULT_KEY_PREFIX: Final = "graflow"


def key_prefix(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """``config["key_prefix"]``, else ``$GRAFLOW_KEY_PREFIX``, else ``"graflow"``: a non-empty string."""
    env = os.environ if environ is None else environ
    value = config.get("key_prefix")
    if value is None:
        value = env.get(ENV_KEY_PREFIX) or DEFAULT_KEY_PREFIX
    if not isinstance(value, str) or not value:
        raise ConfigError(f"key_prefix must be a non-empty string, got {value!r}")
    return value


def seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """``value`` as a finite number of seconds, > 0 (>= 0 with ``zero_ok``), or :class:`ConfigError`.

    Text is accepted too (an environment variable, a flag), so one check serves every source.
    """
    number = _number(name, value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return number


def whole(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or :class:`ConfigError` naming the range."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            pass
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        span = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be a whole number {span}, got {value!r}")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    return float(value)
