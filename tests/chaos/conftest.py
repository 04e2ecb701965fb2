"""The chaos suite (issue 16): real workers, real Redis servers broken on purpose, exact results.

It shares the end-to-end fixtures (the real Redis, a unique key prefix, a fleet of
``graflow-worker`` processes, a private Redis): see ``tests/e2e/conftest.py``. With
``CI=true`` a missing Redis fails the suite instead of skipping it.
"""

from __future__ import annotations

from tests.e2e.conftest import fleet, key_prefix, private_redis, redis_url  # noqa: F401 (fixtures)
from tests.support.reports import pytest_runtest_makereport  # noqa: F401 (a hook)
