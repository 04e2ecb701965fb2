"""Typed channels: a channel view that only accepts values of one message type.

``context.get_typed_channel(UserProfile)`` checks every value sent against the
``TypedDict`` (or dataclass) before storing it, so a malformed message fails where it is
written, with the field that is wrong, instead of where it is read.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints, is_typeddict

from graflow.channels.base import Channel

__all__ = ["TypedChannel"]

M = TypeVar("M")


class TypedChannel(Generic[M]):
    """``send``/``receive`` messages of type ``M`` on an underlying channel."""

    def __init__(self, channel: Channel, message_type: type[M]) -> None:
        if not (is_typeddict(message_type) or dataclasses.is_dataclass(message_type)):
            raise TypeError(f"get_typed_channel() takes a TypedDict or a dataclass, got {message_type!r}")
        self.channel = channel
        self.message_type = message_type
        self._hints = get_type_hints(message_type)

    def send(self, key: str, message: M, ttl: float | None = None) -> None:
        """Validate ``message`` and store it; a non-conforming one raises ``TypeError``, storing nothing."""
        self.channel.set(key, self.validate(message), ttl=ttl)

    def receive(self, key: str, default: M | None = None) -> M | None:
        """The message under ``key``, or ``default``."""
        return typing.cast("M | None", self.channel.get(key, default))

    def validate(self, message: Any) -> M:
        """``message`` if it conforms to the type (a dict is turned into the dataclass)."""
        name = self.message_type.__name__
        if dataclasses.is_dataclass(self.message_type):
            if isinstance(message, dict):
                _check_mapping(
                    message, self._hints, set(self._hints) - _optional_fields(self.message_type), name
                )
                return typing.cast(M, self.message_type(**message))
            if not isinstance(message, self.message_type):
                raise TypeError(f"expected a {name}, got {type(message).__name__}")
            _check_mapping(dataclasses.asdict(message), self._hints, set(), name)
            return message
        if not isinstance(message, dict):
            raise TypeError(f"expected a {name} (a dict), got {type(message).__name__}")
        _check_mapping(message, self._hints, _required_keys(self.message_type), name)
        return typing.cast(M, message)

    # Plain channel access stays available on a typed view.
    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)


def _optional_fields(cls: type) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def _check_mapping(value: dict[str, Any], hints: dict[str, Any], required: set[str], where: str) -> None:
    missing = required - value.keys()
    if missing:
        raise TypeError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    extra = value.keys() - hints.keys()
    if extra:
        raise TypeError(f"{where}: unexpected key(s) {', '.join(sorted(extra))}")
    for key, item in value.items():
        if not _conforms(item, hints[key]):
            raise TypeError(
                f"{where}.{key}: expected {_type_name(hints[key])}, got {type(item).__name__} ({item!r})"
            )


def _required_keys(td: Any) -> set[str]:
    """The keys a TypedDict requires, also when its annotations are strings.

    With ``from __future__ import annotations`` Python (< 3.13) cannot see
    ``NotRequired[...]`` when it builds ``__required_keys__``; the resolved hints can.
    """
    required = set(getattr(td, "__required_keys__", ()))
    for key, hint in get_type_hints(td, include_extras=True).items():
        origin = get_origin(hint)
        if origin is not None and origin is getattr(typing, "NotRequired", None):
            required.discard(key)
        elif origin is not None and origin is getattr(typing, "Required", None):
            required.add(key)
    return required


def _type_name(tp: Any) -> str:
    # Generic aliases forward __name__ to their origin (list[str] says "list"): show them whole.
    if get_origin(tp) is None and getattr(tp, "__name__", None):
        return str(tp.__name__)
    return repr(tp).replace("typing.", "")


def _conforms(value: Any, tp: Any) -> bool:
    """A runtime check of the common annotation forms; anything exotic is accepted."""
    if tp is Any or tp is object:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, set, frozenset):
        return isinstance(value, origin) and (not args or all(_conforms(v, args[0]) for v in value))
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(map(_conforms, value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(_conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return False
        try:
            _check_mapping(value, get_type_hints(tp), _required_keys(tp), tp.__name__)
        except TypeError:
            return False
        return True
    if origin is not None:  # other generics (Sequence[int], ...): check the container only
        return isinstance(value, origin) if isinstance(origin, type) else True
    if isinstance(tp, type):
        if tp is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if tp is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, tp)
    return True
