"""Whether a test failed, for fixtures that print what helps at teardown (worker logs).

A conftest imports :func:`pytest_runtest_makereport`, which keeps each phase's report on
the test item; :func:`call_failed` reads it back::

    from tests.support.reports import pytest_runtest_makereport  # noqa: F401 (a hook)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def call_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test body of ``request`` failed (known at teardown)."""
    report = getattr(request.node, "rep_call", None)
    return bool(report is not None and report.failed)
