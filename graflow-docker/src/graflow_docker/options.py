"""The container options of SPEC section 7, checked before any container starts."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graflow.exceptions import ConfigError
from graflow_docker.exceptions import VolumeNotFoundError

__all__ = ["ContainerOptions", "Volumes"]

#: ``{"/host": {"bind": "/container", "mode": "ro"}}`` or ``["/host:/container:ro", ...]``,
#: as in the Docker SDK.
Volumes = Mapping[str, Mapping[str, str]] | Sequence[str]


@dataclass(frozen=True)
class ContainerOptions:
    """What every container of one handler gets. Field meanings follow ``docker run``."""

    environment: Mapping[str, str] = field(default_factory=dict)
    #: Bind mounts as ``host:container[:mode]`` strings (normalized from either form).
    binds: tuple[str, ...] = ()
    device_requests: tuple[Any, ...] = ()
    network_mode: str | None = None
    mem_limit: str | int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    #: Seconds a task may run in its container before it is stopped.
    timeout: float | None = None

    @classmethod
    def build(
        cls,
        *,
        environment: Mapping[str, Any] | None,
        volumes: Volumes | None,
        device_requests: Sequence[Any] | None,
        network_mode: str | None,
        mem_limit: str | int | None,
        cpu_quota: int | None,
        cpu_period: int | None,
        timeout: float | None,
    ) -> ContainerOptions:
        """Validate the user's options (types, volume paths) and normalize them."""
        if environment is not None and not isinstance(environment, Mapping):
            raise ConfigError(
                f"environment must be a mapping like {{'API_KEY': 'secret'}}, got {type(environment).__name__}"
            )
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        for name, value in (("cpu_quota", cpu_quota), ("cpu_period", cpu_period)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ConfigError(f"{name} must be a positive int (microseconds), got {value!r}")
        return cls(
            environment={str(k): str(v) for k, v in (environment or {}).items()},
            binds=tuple(_binds(volumes)),
            device_requests=tuple(device_requests or ()),
            network_mode=network_mode,
            mem_limit=mem_limit,
            cpu_quota=cpu_quota,
            cpu_period=cpu_period,
            timeout=float(timeout) if timeout is not None else None,
        )

    def check_volumes(self) -> None:
        """Fail if a host path to mount is missing, instead of letting Docker create an empty one."""
        for bind in self.binds:
            source = bind.split(":", 1)[0]
            if source.startswith("/") and not os.path.exists(source):
                raise VolumeNotFoundError(
                    f"volume {bind!r}: the host path {source!r} does not exist. Create it first or fix the "
                    "path (Docker would silently mount a new, empty, root-owned directory there)."
                )

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments for ``APIClient.create_host_config`` (mounts excluded)."""
        config: dict[str, Any] = {}
        if self.network_mode is not None:
            config["network_mode"] = self.network_mode
        if self.mem_limit is not None:
            config["mem_limit"] = self.mem_limit
            # Without this Docker lets the container swap as much again: the limit would not hold.
            config["memswap_limit"] = self.mem_limit
        if self.cpu_quota is not None:
            config["cpu_quota"] = self.cpu_quota
        if self.cpu_period is not None:
            config["cpu_period"] = self.cpu_period
        if self.device_requests:
            config["device_requests"] = list(self.device_requests)
        return config


def _binds(volumes: Volumes | None) -> list[str]:
    if volumes is None:
        return []
    if isinstance(volumes, str):
        raise ConfigError(
            f"volumes must be a dict or a list of 'host:container[:mode]' strings, got {volumes!r}"
        )
    if isinstance(volumes, Mapping):
        binds = []
        for host, spec in volumes.items():
            if isinstance(spec, str):
                binds.append(f"{host}:{spec}:rw")
                continue
            if not isinstance(spec, Mapping) or "bind" not in spec:
                raise ConfigError(
                    f"volumes[{host!r}] must be {{'bind': '/path/in/container', 'mode': 'ro'|'rw'}}, got {spec!r}"
                )
            binds.append(f"{host}:{spec['bind']}:{spec.get('mode', 'rw')}")
    else:
        binds = [str(v) for v in volumes]
    for bind in binds:
        source = os.path.expanduser(bind.split(":", 1)[0])
        if ":" not in bind:
            raise ConfigError(f"volume {bind!r} needs a container path: 'host:container[:mode]'")
        if "/" in source and not source.startswith("/"):
            raise VolumeNotFoundError(
                f"volume {bind!r}: the host path must be absolute (e.g. os.path.abspath({source!r}))"
            )
    return [_expand(b) for b in binds]


def _expand(bind: str) -> str:
    source, rest = bind.split(":", 1)
    return f"{os.path.expanduser(source)}:{rest}"
