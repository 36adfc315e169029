"""JSON-ready values for the core's frozen dataclasses, driven by their type hints.

Commands, lots and settings travel through Redis and rest in `jsonb`; one codec keeps the wire
format and the fingerprint canonical: decimals as strings (never floats), times as ISO 8601, ids
as strings, enums by value, sets sorted, nested dataclasses as objects.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")


def to_json(value: Any) -> Any:
    if isinstance(value, Enum):  # before str: a StrEnum is a str
        return value.value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(to_json(item) for item in value)
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in sorted(value.items())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build dataclass `cls` from `to_json` output; fields not given take their defaults."""
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    values = {
        field.name: _decode(hints[field.name], data[field.name])
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        if field.init and field.name in data
    }
    return cls(**values)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, value)
    if origin is frozenset:
        (inner,) = typing.get_args(hint)
        return frozenset(_decode(inner, item) for item in value)
    if origin in (Mapping, dict):
        key_type, value_type = typing.get_args(hint)
        return {_decode(key_type, key): _decode(value_type, item) for key, item in value.items()}
    if hasattr(hint, "__supertype__"):  # a NewType such as MicroCredits
        return _decode(hint.__supertype__, value)
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value)  # type: ignore[arg-type]
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is Decimal:
        return Decimal(value)
    if hint is UUID:
        return UUID(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is int:
        return int(value)
    if hint in (str, bool):
        return value
    raise TypeError(f"cannot decode {hint!r}")
