"""The Jaeger compose file the README's walkthrough starts: parses, and exposes what graflow-otel uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "graflow-otel" / "docker-compose.jaeger.yml"


def _jaeger() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    return document["services"]["jaeger"]


def test_the_compose_file_runs_jaeger_all_in_one_with_otlp_enabled() -> None:
    jaeger = _jaeger()
    image, _, tag = jaeger["image"].partition(":")
    assert image == "jaegertracing/all-in-one"
    assert tag and tag != "latest"  # pinned, so the walkthrough keeps working
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_the_compose_file_publishes_the_ui_and_both_otlp_ports_on_localhost() -> None:
    published = {}
    for mapping in _jaeger()["ports"]:
        host_ip, host_port, container_port = str(mapping).split(":")
        published[int(container_port)] = (host_ip, int(host_port))
    assert published == {
        16686: ("127.0.0.1", 16686),  # UI
        4317: ("127.0.0.1", 4317),  # OTLP/gRPC
        4318: ("127.0.0.1", 4318),  # OTLP/HTTP: configure()'s default endpoint
    }
