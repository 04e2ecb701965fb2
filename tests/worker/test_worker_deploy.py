"""The deployment files in graflow-worker/deploy/ are valid and agree with the code.

systemd: ``systemd-analyze verify`` when available, else a structural parse. Dockerfile and
docker-compose: parsed, their commands run through the worker's own argument parser, their
environment variables checked against the options table. The Kubernetes overlays are
rendered and checked by tests/deploy.
"""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from graflow_worker.cli import build_parser, build_status_parser
from graflow_worker.options import CONNECTION_OPTIONS, WORKER_OPTIONS

DEPLOY = Path(__file__).resolve().parents[2] / "graflow-worker" / "deploy"
KNOWN_ENV = {o.env for o in (*CONNECTION_OPTIONS, *WORKER_OPTIONS)}
#: Variables of the image itself (Python, pip), not of graflow-worker.
RUNTIME_ENV = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


def check_worker_command(argv: list[str]) -> None:
    """``argv`` (after the program name) must parse with the real CLI."""
    if argv and argv[0] == "status":
        build_status_parser(environ={}).parse_args(argv[1:])
    else:
        build_parser(environ={}).parse_args(argv)


# --- systemd ---------------------------------------------------------------------------------


def unit_file() -> Path:
    return DEPLOY / "graflow-worker@.service"


def test_systemd_unit_has_the_sections_and_a_graceful_stop() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit_file())
    assert parser.sections() == ["Unit", "Service", "Install"]
    service = parser["Service"]
    program, *argv = shlex.split(service["ExecStart"])
    assert program.endswith("/graflow-worker")
    check_worker_command([a.replace("%H", "host").replace("%i", "1") for a in argv])
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "always"
    assert int(service["TimeoutStopSec"]) > WORKER_DEFAULTS["graceful_shutdown_timeout"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path) -> None:
    script = Path(sys.executable).with_name("graflow-worker")
    if not script.exists():
        pytest.skip("the graflow-worker console script is not installed next to this python")
    text = unit_file().read_text().replace("/opt/graflow/venv/bin/graflow-worker", str(script))
    instance = tmp_path / "graflow-worker@1.service"
    instance.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(instance)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    problems = [line for line in done.stderr.splitlines() if str(instance) in line or "graflow" in line]
    assert problems == []


WORKER_DEFAULTS = {"graceful_shutdown_timeout": 30}


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"use the exec (JSON) form so signals reach the worker: {arguments}"
    return value


def test_dockerfile_builds_a_worker_image_whose_command_parses() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert keywords[0] == "FROM"
    assert instructions[0][1].startswith("python:3.")
    entrypoint = exec_form(dict(instructions)["ENTRYPOINT"])
    cmd = exec_form(dict(instructions)["CMD"])
    assert entrypoint == ["graflow-worker"]
    check_worker_command(cmd)
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert exec_form(healthcheck.partition("CMD ")[2]) == ["graflow-worker", "status", "--self"]
    assert dict(instructions)["STOPSIGNAL"] == "SIGTERM"
    assert dict(instructions)["USER"] != "root"


def test_dockerfile_sets_only_variables_the_worker_reads() -> None:
    env_lines = [rest for keyword, rest in dockerfile_instructions() if keyword == "ENV"]
    names = {token.partition("=")[0] for line in env_lines for token in shlex.split(line)}
    assert names - RUNTIME_ENV <= KNOWN_ENV
    assert "GRAFLOW_HEALTH_FILE" in names  # status --self needs it


def test_dockerfile_installs_the_three_distributions() -> None:
    run = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    for dist in ("graflow-core", "graflow-redis", "graflow-worker"):
        assert f"./{dist}" in run


# --- docker compose ---------------------------------------------------------------------------


def load_yaml(name: str) -> list[dict[str, Any]]:
    with open(DEPLOY / name) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def test_compose_runs_redis_and_three_workers() -> None:
    (compose,) = load_yaml("docker-compose.yml")
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:")
    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert sorted(workers) == ["worker-1", "worker-2", "worker-3"]
    ids = set()
    for service in workers.values():
        env = service["environment"]
        assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
        assert env["REDIS_HOST"] == "redis"
        ids.add(env["GRAFLOW_WORKER_ID"])
        assert "redis" in service["depends_on"]
        check_worker_command(service["healthcheck"]["test"][2:])
        assert service["healthcheck"]["test"][1:4] == ["graflow-worker", "status", "--self"]
    assert ids == {"worker-1", "worker-2", "worker-3"}
