"""Typed, bounded reads of one table of a catalog document, each naming its field when it refuses.

Money, credits and rates are decimal text or integers: a TOML float is binary, so "0.1" written
as 0.1 would already be another number, and it is refused. Times are TOML offset date-times,
kept in UTC. Text is printable and length-bounded. A read that refuses raises `Refusal`, carrying
the field's path (`("plans", 1, "versions", 0, "credits")`) and how to name it in a message
(`plans[1] "meclabs-sell" versions[0].credits`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from ledger.core import bounds
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits

E = TypeVar("E", bound=Enum)
PathPart = str | int

_CURRENCY = re.compile(r"[A-Z]{3}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")


class Refusal(Exception):
    def __init__(self, path: tuple[PathPart, ...], name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.path = path
        self.name = name
        self.message = message


class Table:
    """One TOML table: `fields` are those it may have; any other is refused (`unknown`)."""

    def __init__(self, data: Mapping[str, Any], path: tuple[PathPart, ...], name: str, fields: frozenset[str]) -> None:
        self.data = data
        self.path = path
        self.name = name  # how a message names it: 'plans[1] "meclabs-sell" versions[0]'
        self.fields = fields

    def refuse(self, field: str | None, message: str) -> Refusal:
        if field is None:
            return Refusal(self.path, self.name, message)
        name = f"{self.name}.{field}" if self.name else field
        return Refusal((*self.path, *field.split(".")), name, message)

    def unknown(self) -> list[Refusal]:
        allowed = ", ".join(sorted(self.fields))
        return [
            self.refuse(field, f"unknown field (a table here has {allowed})")
            for field in self.data
            if field not in self.fields
        ]

    def has(self, field: str) -> bool:
        return field in self.data

    def _value(self, field: str, required: bool) -> Any:
        if field not in self.data:
            if required:
                raise self.refuse(field, "required")
            return None
        return self.data[field]

    def text(self, field: str, length_max: int = bounds.NAME_LENGTH_MAX, default: str | None = None) -> str:
        value = self._value(field, default is None)
        if value is None:
            assert default is not None
            return default
        if not isinstance(value, str):
            raise self.refuse(field, f"text in quotes, not {_kind(value)}")
        if not value or len(value) > length_max or not value.isprintable():
            raise self.refuse(field, f"printable text of 1 to {length_max:,} characters")
        return value

    def key(self, field: str = "key", length_max: int = bounds.PLAN_KEY_LENGTH_MAX) -> str:
        value = self.text(field, length_max)
        if not _KEY.fullmatch(value):
            raise self.refuse(field, f"{value!r} is no key: letters, digits and . _ : / - (a letter or digit first)")
        return value

    def currency(self, default: str) -> str:
        value = self.text("currency", 3, default)
        if not _CURRENCY.fullmatch(value):
            raise self.refuse("currency", f"an ISO 4217 code such as USD, not {value!r}")
        return value

    def decimal(self, field: str, maximum: Decimal, decimals_max: int = bounds.QUANTITY_DECIMALS_MAX) -> Decimal:
        value = self.optional_decimal(field, maximum, decimals_max, required=True)
        assert value is not None
        return value

    def optional_decimal(
        self, field: str, maximum: Decimal, decimals_max: int = bounds.QUANTITY_DECIMALS_MAX, *, required: bool = False
    ) -> Decimal | None:
        text = self._number_text(field, required)
        if text is None:
            return None
        try:
            number = bounds.parse_decimal(text, decimals_max=decimals_max)
            bounds.check_decimal(number, "it", maximum, decimals_max)
        except InvalidCommand as error:
            raise self.refuse(field, error.message.removeprefix("it ")) from None
        return number

    def credits(self, field: str) -> MicroCredits:
        """Credits, none when left out."""
        value = self.optional_credits(field)
        return MicroCredits(0) if value is None else value

    def optional_credits(self, field: str) -> MicroCredits | None:
        text = self._number_text(field, required=False)
        if text is None:
            return None
        try:
            return MicroCredits(bounds.parse_credits(text))
        except InvalidCommand as error:
            raise self.refuse(field, error.message) from None

    def _number_text(self, field: str, required: bool) -> str | None:
        value = self._value(field, required)
        if value is None:
            return None
        if isinstance(value, float):
            raise self.refuse(field, f'a float is binary and inexact: write it as text ("{value}") or an integer')
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.refuse(field, f'a decimal as text (e.g. "995" or "0.0015") or an integer, not {_kind(value)}')
        if str(value).startswith("-"):
            raise self.refuse(field, f"must not be negative: {value}")
        return str(value)

    def count(self, field: str, maximum: int, default: int = 0) -> int:
        value = self.optional_count(field, maximum)
        return default if value is None else value

    def optional_count(self, field: str, maximum: int) -> int | None:
        value = self._value(field, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(field, f"a whole number, not {_kind(value)}")
        if not 0 <= value <= maximum:
            raise self.refuse(field, f"must be 0 to {maximum:,}")
        return value

    def flag(self, field: str, default: bool) -> bool:
        value = self._value(field, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.refuse(field, f"true or false, not {_kind(value)}")
        return value

    def time(self, field: str = "effective_at", default: datetime | None = None) -> datetime:
        value = self._value(field, default is None)
        if value is None:
            assert default is not None
            return default
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise self.refuse(field, f"a date-time with its offset, e.g. 2026-01-01T00:00:00Z, not {_kind(value)}")
        try:
            bounds.check_time(value, "it")
        except InvalidCommand as error:
            raise self.refuse(field, error.message.removeprefix("it ")) from None
        return value.astimezone(UTC)

    def choice(self, field: str, kind: type[E], default: E | None = None) -> E:
        value = self._value(field, default is None)
        if value is None:
            assert default is not None
            return default
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(f'"{member.value}"' for member in kind)
            raise self.refuse(field, f"one of {choices}, not {value!r}") from None

    def names(self, field: str, maximum: int, length_max: int) -> frozenset[str] | None:
        """A list of distinct keys (product, plan or dimension names); None when absent."""
        value = self._value(field, False)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > maximum:
            raise self.refuse(field, f"a list of at most {maximum:,} names in quotes")
        for item in value:
            if not isinstance(item, str) or not item or len(item) > length_max or not _KEY.fullmatch(item):
                raise self.refuse(field, f"{item!r} is no key: letters, digits and . _ : / - of {length_max} at most")
        if len(set(value)) < len(value):
            raise self.refuse(field, "names a key twice")
        return frozenset(value)

    def dimensions(self, field: str = "dimensions") -> dict[str, str]:
        value = self._value(field, False)
        if value is None:
            return {}
        if not isinstance(value, dict) or len(value) > bounds.DIMENSIONS_MAX:
            example = '{ model = "gpt-4o" }'
            raise self.refuse(field, f"a table of at most {bounds.DIMENSIONS_MAX} dimensions, e.g. {example}")
        for name, item in value.items():
            if not isinstance(item, str) or not item or len(item) > bounds.TEXT_LENGTH_MAX or not item.isprintable():
                raise self.refuse(f"{field}.{name}", f"printable text of 1 to {bounds.TEXT_LENGTH_MAX} characters")
        return dict(value)

    def tables(self, field: str, maximum: int, fields: frozenset[str], *, required: bool = True) -> list[Table]:
        """An array of tables (`[[plans.versions]]`), each to be read with `fields`."""
        value = self._value(field, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.refuse(field, f"an array of tables ([[{field}]]), not {_kind(value)}")
        if required and not value:
            raise self.refuse(field, "at least one is required")
        if len(value) > maximum:
            raise self.refuse(field, f"at most {maximum:,}, not {len(value):,}")
        prefix = f"{self.name} " if self.name else ""
        return [
            Table(item, (*self.path, field, index), f"{prefix}{field}[{index}]", fields)
            for index, item in enumerate(value)
        ]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, datetime):
        return f"the local date-time {value.isoformat()}" if value.utcoffset() is None else value.isoformat()
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"
