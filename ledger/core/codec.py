"""JSON-ready values for the core's frozen dataclasses, driven by their type hints.

Commands, lots and settings travel through Redis and rest in `jsonb`; one codec keeps the wire
format and the fingerprint canonical: decimals as strings (never floats), times as ISO 8601, ids
as strings, enums by value, sets sorted, nested dataclasses as objects.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")
Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

# Both directions are compiled once per type (the ledger worker encodes and decodes every command
# it applies; walking type hints per value cost more than the apply itself).


def to_json(value: Any) -> Any:
    return _encoder(type(value))(value)  # type: ignore[arg-type]  # classes are hashable


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build dataclass `cls` from `to_json` output; fields not given take their defaults."""
    plan = _plan(cls)  # type: ignore[arg-type]  # classes are hashable
    return cls(**{name: decode(data[name]) for name, decode in plan if name in data})


def _identity(value: Any) -> Any:
    return value


@cache
def _encoder(cls: type) -> Encoder:
    if issubclass(cls, Enum):  # before str: a StrEnum is a str
        return operator.attrgetter("value")
    if cls is type(None) or issubclass(cls, bool | int | str):
        return _identity
    if issubclass(cls, Decimal | UUID):
        return str
    if issubclass(cls, datetime):
        return datetime.isoformat
    if issubclass(cls, frozenset):
        return lambda value: sorted(to_json(item) for item in value)
    if issubclass(cls, Mapping):
        return lambda value: {str(key): to_json(item) for key, item in sorted(value.items())}
    if dataclasses.is_dataclass(cls):
        names = [field.name for field in dataclasses.fields(cls)]
        return lambda value: {name: to_json(getattr(value, name)) for name in names}
    raise TypeError(f"cannot encode {cls.__name__}")


@cache
def _plan(cls: type) -> list[tuple[str, Decoder]]:
    hints = typing.get_type_hints(cls)
    return [(field.name, _decoder(hints[field.name])) for field in dataclasses.fields(cls) if field.init]


def _decoder(hint: Any) -> Decoder:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner_hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        inner = _decoder(inner_hint)
        return lambda value: None if value is None else inner(value)
    if origin is frozenset:
        (item_hint,) = typing.get_args(hint)
        item = _decoder(item_hint)
        return lambda value: frozenset(item(i) for i in value)
    if origin in (Mapping, dict):
        key_hint, value_hint = typing.get_args(hint)
        key, item = _decoder(key_hint), _decoder(value_hint)
        return lambda value: {key(k): item(i) for k, i in value.items()}
    if hasattr(hint, "__supertype__"):  # a NewType such as MicroCredits
        return _decoder(hint.__supertype__)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda value: from_json(hint, value)
    if hint is datetime:
        return datetime.fromisoformat
    if hint in (Decimal, UUID, int):
        return typing.cast(Decoder, hint)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if hint in (str, bool):
        return _identity

    def refuse(value: Any) -> Any:
        raise TypeError(f"cannot decode {hint!r}")

    return refuse
