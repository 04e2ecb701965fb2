"""The MULTIPROCESSING backend's executor (``pool_executor``) meets the remote executor contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graflow.coordination.processes import pool_executor
from graflow.remote.executor import RemoteExecutor
from tests.core.remote.contract import ExecutorContract


class TestPoolExecutor(ExecutorContract):
    """Envelopes on a pool of two processes, started once for the class, as a group's pool starts."""

    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls) -> Iterator[RemoteExecutor]:
        with pool_executor(2) as executor:
            yield executor
