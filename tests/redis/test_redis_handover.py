"""graflow_redis.handover: a child process resolves its parent's client and sealer names.

Adopting happens in the child; here it is done in this process under fresh names, which
is what a child sees: names it did not register, resolved to equivalent objects.
"""

from __future__ import annotations

import pickle

import pytest
import redis

from graflow_redis.connection import client_from_config, register_client
from graflow_redis.handover import Handover, adopt, handover
from graflow_redis.signing import Purpose, Sealer, Slot
from graflow_redis.trust import register_sealer, trust_options, unsigned_warnings

SLOT = Slot(Purpose.CHANNEL, "handover-test", "run-1", "key")


def test_a_handover_names_every_registered_sealer_with_its_keys_in_order() -> None:
    sealer = Sealer(["new", "old"])
    ref = register_sealer(sealer)
    assert handover().sealers[ref] == (b"new", b"old")


def test_an_adopted_sealer_opens_what_the_parents_sealed_and_seals_with_its_first_key() -> None:
    parent = Sealer(["new", "old"])
    blob = parent.seal(SLOT, b"payload")
    kept = adopt(Handover(clients={}, sealers={"sealer-from-parent": (b"new", b"old")}))
    child = trust_options({"sealer_ref": "sealer-from-parent"})["secret_key"]
    assert child in kept
    assert child.open(SLOT, blob) == b"payload"
    assert Sealer(["new"]).open(SLOT, child.seal(SLOT, b"back")) == b"back"


def test_an_adopted_client_reaches_the_parents_server(redis_url: str) -> None:
    parent = redis.Redis.from_url(redis_url)
    ref = register_client(parent)
    shipped = pickle.loads(pickle.dumps(handover()))  # it crosses a pipe
    url = shipped.clients[ref]
    kept = adopt(Handover(clients={"client-from-parent": url}, sealers={}))
    child = client_from_config({"client_ref": "client-from-parent", "redis_url": "redis://nowhere:1/0"})
    assert child in kept
    assert child.ping() is True
    assert child.connection_pool.connection_kwargs["port"] == parent.connection_pool.connection_kwargs["port"]
    parent.close()


def test_a_handover_shows_names_but_never_keys_or_urls() -> None:
    shown = repr(Handover(clients={"c": "redis://:pw@host:6379/0"}, sealers={"s": (b"topsecret",)}))
    assert shown == "<Handover clients=['c'] sealers=['s']>"
    assert "pw" not in shown and "topsecret" not in shown


def test_a_sealer_still_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="never travels"):
        pickle.dumps(Sealer(["k"]))


def test_a_child_does_not_repeat_a_warning_its_parent_gave() -> None:
    adopt(Handover(clients={}, sealers={}, warned=frozenset({"redis at 127.0.0.9:1"})))
    assert "redis at 127.0.0.9:1" in unsigned_warnings()
