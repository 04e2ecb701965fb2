"""What a rendered worker pod would actually run with, computed by graflow-worker's own parser.

A container's environment is resolved as the kubelet would (its ``env`` over its
``envFrom`` ConfigMaps; Secret values from the rendered Secret), then its ``args`` are parsed
by ``graflow_worker.cli.build_parser`` with that environment: the result is the worker's
effective settings, flags over variables over defaults, exactly as in the pod.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
from typing import Any

import pytest

from graflow.core.routing import DEFAULT_QUEUE
from graflow_worker.cli import build_parser, build_status_parser
from graflow_worker.options import CONNECTION_OPTIONS, WORKER_OPTIONS
from tests.deploy.conftest import Rendered

#: Stands for a value the rendering does not hold (a Secret the operator provides).
EXTERNAL = "<from a Secret outside this rendering>"


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | str:
    """The parsed arguments, or argparse's error message when ``argv`` does not parse."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(argv)
        except SystemExit:
            return err.getvalue().strip().splitlines()[-1]


def parse(parser: argparse.ArgumentParser, argv: list[str], where: str) -> argparse.Namespace:
    """``parser.parse_args(argv)``, failing the test with argparse's message if it does not parse."""
    parsed = _parse(parser, argv)
    if isinstance(parsed, str):
        shown = [
            "***" if before == "--secret-key" else a for before, a in zip(["", *argv], argv, strict=False)
        ]
        pytest.fail(f"{where}: {shown} is not accepted by {parser.prog}: {parsed}", pytrace=False)
    return parsed


def worker_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    return container


def environment(out: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """The container's variables: ``env`` entries win over ``envFrom`` ConfigMaps and Secrets."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(out.named("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(_secret_data(out, source["secretRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = _secret_data(out, ref["name"]).get(ref["key"], EXTERNAL)
        else:
            env[var["name"]] = f"<{var['name']} from the pod>"
    return env


def _secret_data(out: Rendered, name: str) -> dict[str, str]:
    matches = [s for s in out.of_kind("Secret") if s["metadata"]["name"] == name]
    if not matches:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in matches[0].get("data", {}).items()}


def settings(out: Rendered, deployment: dict[str, Any]) -> argparse.Namespace:
    """The worker's effective settings in this Deployment's pods.

    Each variable's value is also parsed as its flag: argparse checks the type and choices
    of a flag, not of a default taken from the environment.
    """
    container = worker_container(deployment)
    where = f"{out.overlay}: {deployment['metadata']['name']}"
    env = environment(out, container)
    as_flags: list[str] = []
    for option in (*CONNECTION_OPTIONS, *WORKER_OPTIONS):
        if option.env in env:
            as_flags += [option.flag] if option.switch else [option.flag, env[option.env]]
    parse(build_parser(environ={}), as_flags + worker_args(container), where)
    return parse(build_parser(environ=env), worker_args(container), where)


def worker_args(container: dict[str, Any]) -> list[str]:
    """The container's ``args``: the worker's command line after ``graflow-worker``."""
    return list(container["args"])


def served_queues(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The queues the worker serves: ``--queues``, else ``GRAFLOW_QUEUES``, else the default queue."""
    args = container["args"]
    spec = (
        args[args.index("--queues") + 1] if "--queues" in args else env.get("GRAFLOW_QUEUES", DEFAULT_QUEUE)
    )
    return [q.strip() for q in spec.split(",") if q.strip()]


def probe(out: Rendered, deployment: dict[str, Any], kind: str) -> argparse.Namespace:
    """The ``graflow-worker status`` settings of the container's ``kind`` probe (``livenessProbe``...)."""
    container = worker_container(deployment)
    command = container[kind]["exec"]["command"]
    assert command[:3] == ["graflow-worker", "status", "--self"], command
    where = f"{out.overlay}: {deployment['metadata']['name']} {kind}"
    return parse(build_status_parser(environ=environment(out, container)), command[2:], where)


def trigger_server(meta: dict[str, str], env: dict[str, str]) -> tuple[str, int]:
    """``(host, port)`` a KEDA redis-streams trigger connects to; ``*FromEnv`` read the target's ``env``."""
    if "address" in meta or "addressFromEnv" in meta:
        host, _, port = (meta.get("address") or env[meta["addressFromEnv"]]).rpartition(":")
    else:
        host = meta.get("host") or env[meta["hostFromEnv"]]
        port = meta.get("port") or env[meta["portFromEnv"]]
    return host, int(port)
