"""Typed channels: messages checked against a TypedDict or dataclass when sent (SPEC section 6).

A message that does not conform raises ``TypeError`` naming what is wrong, and nothing
is stored: not a new key, and not over an earlier, valid message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import pytest

from graflow.channels.memory import MemoryChannel
from graflow.channels.typed import TypedChannel
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow

try:  # NotRequired is in typing from 3.11
    from typing import NotRequired
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired


class UserProfile(TypedDict):
    user_id: str
    name: str
    email: str
    age: int
    premium: bool


class Address(TypedDict):
    city: str
    zip_code: str


class Customer(TypedDict):
    name: str
    address: Address
    tags: list[str]
    scores: dict[str, float]
    nickname: str | None
    tier: Literal["free", "pro"]
    referrer: NotRequired[str]


@dataclass
class OrderPlaced:
    order_id: str
    amount: float
    items: list[str] = field(default_factory=list)


ADA: UserProfile = {"user_id": "u1", "name": "Ada", "email": "ada@example.com", "age": 36, "premium": True}
KIM: Customer = {
    "name": "Kim",
    "address": {"city": "Seoul", "zip_code": "04524"},
    "tags": ["vip"],
    "scores": {"q1": 0.9},
    "nickname": None,
    "tier": "pro",
}


@pytest.fixture
def profiles() -> TypedChannel[UserProfile]:
    return TypedChannel(MemoryChannel("typed"), UserProfile)


@pytest.fixture
def customers() -> TypedChannel[Customer]:
    return TypedChannel(MemoryChannel("typed"), Customer)


# --- inside a workflow ---------------------------------------------------------------------------


def test_tasks_send_and_receive_typed_messages_through_the_run_channel() -> None:
    with workflow("typed_channel") as wf:

        @task(inject_context=True)
        def producer(context: TaskExecutionContext) -> None:
            context.get_typed_channel(UserProfile).send("user", ADA)

        @task(inject_context=True)
        def consumer(context: TaskExecutionContext) -> str:
            profile = context.get_typed_channel(UserProfile).receive("user")
            assert profile is not None
            return f"{profile['name']} <{profile['email']}>"

        producer >> consumer
        result, ctx = wf.execute(ret_context=True)

    assert result == "Ada <ada@example.com>"
    assert ctx.channel.get("user") == ADA


def test_a_task_sending_a_malformed_message_fails_with_type_error() -> None:
    with workflow("typed_channel_error") as wf:

        @task(inject_context=True)
        def producer(context: TaskExecutionContext) -> None:
            context.get_typed_channel(UserProfile).send("user", {**ADA, "age": "36"})

        with pytest.raises(TypeError, match=r"UserProfile\.age: expected int, got str"):
            wf.execute()


# --- TypedDict messages ------------------------------------------------------------------------------


def test_a_conforming_message_round_trips(profiles: TypedChannel[UserProfile]) -> None:
    profiles.send("user", ADA)
    assert profiles.receive("user") == ADA


def test_receive_of_a_missing_key_returns_the_default(profiles: TypedChannel[UserProfile]) -> None:
    assert profiles.receive("nobody") is None
    assert profiles.receive("nobody", default=ADA) == ADA


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({k: v for k, v in ADA.items() if k != "email"}, r"UserProfile: missing key\(s\) email"),
        ({**ADA, "role": "admin"}, r"UserProfile: unexpected key\(s\) role"),
        ({**ADA, "age": "36"}, r"UserProfile\.age: expected int, got str"),
        ({**ADA, "age": True}, r"UserProfile\.age: expected int, got bool"),
        ({**ADA, "premium": 1}, r"UserProfile\.premium: expected bool, got int"),
        ([("user_id", "u1")], r"expected a UserProfile \(a dict\), got list"),
    ],
    ids=["missing key", "extra key", "wrong type", "bool is not int", "int is not bool", "not a dict"],
)
def test_a_non_conforming_message_raises_type_error_and_stores_nothing(
    profiles: TypedChannel[UserProfile], message: Any, error: str
) -> None:
    with pytest.raises(TypeError, match=error):
        profiles.send("user", message)
    assert not profiles.channel.exists("user")


def test_a_rejected_message_leaves_the_previous_one_in_place(profiles: TypedChannel[UserProfile]) -> None:
    profiles.send("user", ADA)
    with pytest.raises(TypeError):
        profiles.send("user", {**ADA, "name": None})
    assert profiles.receive("user") == ADA


def test_nested_typed_dicts_lists_dicts_optionals_and_literals_are_checked(
    customers: TypedChannel[Customer],
) -> None:
    customers.send("customer", KIM)
    with_referrer: Customer = {**KIM, "referrer": "ada", "nickname": "kk"}
    customers.send("other", with_referrer)

    assert customers.receive("customer") == KIM
    assert customers.receive("other") == with_referrer


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"address": {"city": "Seoul"}}, r"Customer\.address: expected Address"),
        ({"address": {"city": "Seoul", "zip_code": 4524}}, r"Customer\.address: expected Address"),
        ({"tags": ["vip", 7]}, r"Customer\.tags: expected list\[str\]"),
        ({"scores": {"q1": "high"}}, r"Customer\.scores: expected dict\[str, float\]"),
        ({"nickname": 5}, r"Customer\.nickname: expected"),
        ({"tier": "gold"}, r"Customer\.tier: expected"),
        ({"referrer": 3}, r"Customer\.referrer: expected str"),
    ],
    ids=[
        "nested missing key",
        "nested wrong type",
        "list item",
        "dict value",
        "optional",
        "literal",
        "not required",
    ],
)
def test_a_wrong_nested_value_raises_type_error_and_stores_nothing(
    customers: TypedChannel[Customer], change: dict[str, Any], error: str
) -> None:
    with pytest.raises(TypeError, match=error):
        customers.send("customer", {**KIM, **change})
    assert not customers.channel.exists("customer")


def test_a_typed_channel_still_offers_the_plain_channel_operations(
    profiles: TypedChannel[UserProfile],
) -> None:
    profiles.send("user", ADA)
    assert profiles.keys() == ["user"]
    assert profiles.exists("user")
    profiles.delete("user")
    assert profiles.keys() == []


def test_only_typed_dicts_and_dataclasses_make_typed_channels() -> None:
    with pytest.raises(TypeError, match="TypedDict or a dataclass"):
        TypedChannel(MemoryChannel("typed"), dict)


# --- dataclass messages --------------------------------------------------------------------------------


def test_a_dataclass_message_round_trips_as_an_instance() -> None:
    orders = TypedChannel(MemoryChannel("typed"), OrderPlaced)
    message = OrderPlaced("o-1", 12.5, ["book"])

    orders.send("order", message)

    received = orders.receive("order")
    assert isinstance(received, OrderPlaced)
    assert received == message


def test_a_dict_sent_on_a_dataclass_channel_is_stored_as_the_dataclass() -> None:
    orders = TypedChannel(MemoryChannel("typed"), OrderPlaced)

    orders.send("order", {"order_id": "o-2", "amount": 3})  # items has a default

    assert orders.receive("order") == OrderPlaced("o-2", 3, [])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (OrderPlaced("o-3", "cheap"), r"OrderPlaced\.amount: expected float, got str"),  # type: ignore[arg-type]
        (OrderPlaced("o-3", 1.0, [1]), r"OrderPlaced\.items: expected list\[str\]"),  # type: ignore[list-item]
        ({"amount": 1.0}, r"OrderPlaced: missing key\(s\) order_id"),
        ({"order_id": "o-3", "amount": 1.0, "coupon": "X"}, r"OrderPlaced: unexpected key\(s\) coupon"),
        ("o-3", r"expected a OrderPlaced, got str"),
    ],
    ids=["wrong field type", "wrong item type", "missing field", "extra field", "other type"],
)
def test_a_non_conforming_dataclass_message_raises_type_error_and_stores_nothing(
    message: Any, error: str
) -> None:
    orders = TypedChannel(MemoryChannel("typed"), OrderPlaced)
    with pytest.raises(TypeError, match=error):
        orders.send("order", message)
    assert not orders.channel.exists("order")
