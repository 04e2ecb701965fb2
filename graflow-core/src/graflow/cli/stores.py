"""Where ``resume``, ``rerun`` and ``runs`` find runs: ``--state-dir DIR``, or ``--redis-url URL --key-prefix P``.

``--allow-unsigned`` goes with ``--redis-url``: the store that reads pickles from a Redis off
this machine refuses to without a secret key (``GRAFLOW_SECRET_KEY``) unless told so.

Every command that reads a state store takes the same options and turns them into the
``config`` mapping that :func:`graflow.core.resume.store_for` reads: ``{"state_dir": DIR}``
for the local store (none given: ``$GRAFLOW_STATE_DIR``, else ``./.graflow``), or
``{"redis_url": URL, "key_prefix": P}``, which graflow-redis claims for its store. Only an
explicit ``--redis-url`` points at Redis; ``REDIS_URL`` in the environment does not, so a
shell set up for a worker fleet still lists the local runs of its directory.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, Final

from graflow import settings
from graflow.exceptions import ConfigError, PluginNotInstalledError
from graflow.plugins import get_plugin_manager

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "ENV_KEY_PREFIX",
    "ENV_REDIS_URL",
    "add_store_options",
    "store_arguments",
    "store_config",
]

#: The variables every Graflow process reads for the same settings (see graflow.settings).
ENV_REDIS_URL: Final = settings.ENV_REDIS_URL
ENV_KEY_PREFIX: Final = settings.ENV_KEY_PREFIX
#: The key prefix drivers and workers use unless told otherwise.
DEFAULT_KEY_PREFIX: Final = settings.DEFAULT_KEY_PREFIX
ALLOW_UNSIGNED_HELP: Final = (
    "with Redis: go on without a secret key (GRAFLOW_SECRET_KEY) when Redis is not on loopback; whoever "
    "can write to that Redis can then run code in this process"
)


def add_store_options(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """Add ``--state-dir``, ``--redis-url`` and ``--key-prefix`` to ``parser``.

    ``nested=True`` for a subcommand of a command that has them too (``runs show``): an
    option left out there keeps the value given before the subcommand.
    """
    default = argparse.SUPPRESS if nested else None
    group = parser.add_argument_group(
        "state store",
        "where the runs are kept (default: $GRAFLOW_STATE_DIR, else ./.graflow)",
    )
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        default=default,
        help="the state directory of durable local runs (`graflow run --durable`)",
    )
    group.add_argument(
        "--redis-url",
        metavar="URL",
        default=default,
        help="the Redis server whose runs to use (runs on --queue redis; needs graflow-redis)",
    )
    group.add_argument(
        "--key-prefix",
        metavar="P",
        default=default,
        help=f"with --redis-url: the runs' key prefix (env {ENV_KEY_PREFIX}; default {DEFAULT_KEY_PREFIX})",
    )
    group.add_argument(
        "--allow-unsigned",
        action="store_true",
        default=default if nested else False,
        help=ALLOW_UNSIGNED_HELP,
    )


def store_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config that points at the store ``args`` name; a Redis store must exist, never a silent fallback."""
    state_dir = getattr(args, "state_dir", None)
    redis_url = getattr(args, "redis_url", None)
    key_prefix = getattr(args, "key_prefix", None)
    allow_unsigned = getattr(args, "allow_unsigned", False)
    if redis_url and state_dir:
        raise ConfigError("--state-dir and --redis-url name two stores; choose one")
    if not redis_url:
        if key_prefix is not None:
            raise ConfigError("--key-prefix names runs kept in Redis; use it with --redis-url URL")
        if allow_unsigned:
            raise ConfigError("--allow-unsigned is about runs kept in Redis; use it with --redis-url URL")
        return {"state_dir": state_dir} if state_dir else {}
    config: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": settings.key_prefix({"key_prefix": key_prefix or None}),
    }
    if allow_unsigned:
        config["allow_unsigned"] = True
    if get_plugin_manager().hook.graflow_state_store_for(config=config) is None:
        raise PluginNotInstalledError("--redis-url", "graflow-redis")
    return config


def store_arguments(config: Mapping[str, Any]) -> list[str]:
    """The options that point a command at the store ``config`` names (none for the default one)."""
    if config.get("redis_url"):
        prefix = str(config.get("key_prefix") or DEFAULT_KEY_PREFIX)
        unsigned = ["--allow-unsigned"] if config.get("allow_unsigned") is True else []
        return ["--redis-url", str(config["redis_url"]), "--key-prefix", prefix, *unsigned]
    if config.get("state_dir"):
        return ["--state-dir", str(config["state_dir"])]
    return []
