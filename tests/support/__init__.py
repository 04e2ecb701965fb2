"""Helpers every test suite shares, one module each: import them from that module.

``tests.support.waiting`` (``wait_until``), ``tests.support.ports`` (``free_port``),
``tests.support.services`` (a missing service skips, or fails under ``CI=true``),
``tests.support.redis_server`` (``PrivateRedis``), ``tests.support.redis_keys``.
Helpers only one suite uses live next to it (``tests.<suite>.<module>``).
"""
