"""Fixtures for the graflow-otel tests (helpers live in ``tests.otel.otel_support``).

graflow-otel traces every run of the environment it is installed in, so it lives in its
own tox environment (``tox -e otel``); where it is not installed, this folder is not
collected rather than failing at import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


if not all(map(_installed, ("graflow_otel", "opentelemetry.sdk", "opentelemetry.proto", "yaml"))):
    collect_ignore_glob = ["test_*.py"]
else:
    from tests.otel.otel_support import EXPORTER, OtlpReceiver, Spans, install_memory_provider


@pytest.fixture
def spans() -> Iterator[Spans]:
    """This process's finished spans, starting empty."""
    install_memory_provider()
    EXPORTER.clear()
    yield Spans(EXPORTER)
    EXPORTER.clear()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP receiver on 127.0.0.1 for spans from other processes."""
    server = OtlpReceiver()
    server.start()
    yield server
    server.stop()
