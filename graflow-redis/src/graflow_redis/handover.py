"""What a child process needs to reach Redis as its parent does: the parent's named clients and sealers.

A worker puts names, not secrets, in the channel and store settings of every task it runs
(``client_ref``, ``sealer_ref``: see :func:`~graflow_redis.connection.register_client` and
:func:`~graflow_redis.trust.register_sealer`). A name means something only in the process
that registered it, so a pool process of that worker (``graflow-worker --pool processes``)
gets a :class:`Handover` once, over the private pipe it was started with, and :func:`adopt`
registers under the same names a client for the same server and a sealer with the same
keys. The task then signs and verifies in the child exactly as it would in the worker.

The keys cross that pipe and nothing else: never Redis, the command line or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from graflow_redis.connection import register_client, registered_clients, shared_client, url_of
from graflow_redis.signing import Sealer
from graflow_redis.trust import assume_warned, register_sealer, registered_sealers, unsigned_warnings

__all__ = ["Handover", "adopt", "handover"]


@dataclass(frozen=True)
class Handover:
    """This process's client names (each with its server's URL) and sealer names (each with its keys)."""

    clients: dict[str, str]
    sealers: dict[str, tuple[bytes, ...]]
    #: Servers this process warned it reads unsigned: a child need not say it again.
    warned: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # URLs may hold passwords, sealers hold keys: show names only
        return f"<Handover clients={sorted(self.clients)} sealers={sorted(self.sealers)}>"


def handover() -> Handover:
    """What :func:`adopt` needs, in a child process, to resolve the names registered here."""
    return Handover(
        clients={ref: url_of(client) for ref, client in registered_clients().items()},
        sealers={ref: sealer.keys_for_child_process() for ref, sealer in registered_sealers().items()},
        warned=unsigned_warnings(),
    )


def adopt(parent: Handover) -> list[object]:
    """Register the parent's names here; returns what they name, which the caller must keep alive.

    The registries hold their objects weakly, so a name resolves only while the returned
    list does.
    """
    assume_warned(parent.warned)
    kept: list[object] = []
    for ref, url in parent.clients.items():
        client = shared_client(url)
        register_client(client, ref)
        kept.append(client)
    for ref, keys in parent.sealers.items():
        sealer = Sealer(list(keys))
        register_sealer(sealer, ref)
        kept.append(sealer)
    return kept
