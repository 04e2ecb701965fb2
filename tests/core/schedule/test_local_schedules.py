"""The schedule-store contract over a local state directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graflow.schedule import ScheduleStore
from graflow.state.local import LocalStore
from tests.core.schedule.contract import ScheduleStoreContract


class TestLocalSchedules(ScheduleStoreContract):
    @pytest.fixture
    def schedules(self, tmp_path: Path) -> Iterator[ScheduleStore]:
        store = LocalStore(tmp_path / "state")
        try:
            yield store.schedules()
        finally:
            store.close()
