"""Fixtures for the command-line suites: plain output, files to run, ``graflow`` in process.

* ``plain_output`` (autouse): no colour settings from the environment; the store and Redis
  variables a developer may have exported are cleared, and ``GRAFLOW_STATE_DIR`` points
  into the test's own directory, so no test writes a ``.graflow`` into the repository.
* ``write``: ``write(name, source)`` writes a dedented file into ``tmp_path``.
* ``cli``: ``cli(*argv)`` runs ``graflow`` in this process: ``(exit status, stdout, stderr)``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from graflow.cli.main import main
from tests.core.cli.output import Run


@pytest.fixture(autouse=True)
def plain_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Output is not a terminal here; make sure the environment does not claim otherwise."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "REDIS_URL", "GRAFLOW_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRAFLOW_STATE_DIR", str(tmp_path / "default-state"))


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write_file(name: str, source: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write_file


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``graflow`` in process: ``(exit status, stdout, stderr)``."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
