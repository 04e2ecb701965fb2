"""HMAC-SHA256 signatures for payloads that cross Redis.

Unpickling is code execution, so a process that holds a secret key refuses payloads
that are unsigned or whose signature does not match. The key comes from config
(``secret_key``) or the ``GRAFLOW_SECRET_KEY`` environment variable; drivers and
workers must share it. A signature proves who produced a payload; it does not
prevent an old signed payload from being replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from graflow_redis.errors import SignatureError

__all__ = ["ENV_VAR", "Signer"]

#: Environment variable holding the shared secret when config does not.
ENV_VAR: Final = "GRAFLOW_SECRET_KEY"


class Signer:
    """Signs and verifies byte strings with one secret key."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("a signing key must not be empty")
        self._key = key.encode() if isinstance(key, str) else bytes(key)

    @classmethod
    def from_config(cls, secret_key: str | bytes | None) -> Signer | None:
        """A signer for ``secret_key``, else for ``$GRAFLOW_SECRET_KEY``; ``None`` when neither is set."""
        key = secret_key or os.environ.get(ENV_VAR)
        return cls(key) if key else None

    def sign(self, data: bytes) -> str:
        """Hex HMAC-SHA256 of ``data``."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str | bytes | None, what: str) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is ``data``'s signature."""
        if not signature:
            raise SignatureError(
                f"{what} is not signed, and this process requires signed payloads; give the "
                f"sender the same secret key (config secret_key or ${ENV_VAR})"
            )
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", "replace")
        if not hmac.compare_digest(self.sign(data), signature):
            raise SignatureError(
                f"{what} has a signature that does not match: it was altered, or signed with "
                "another key (check that every driver and worker uses the same secret key)"
            )
