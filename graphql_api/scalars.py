"""Exact amounts and bounded times on the wire: decimal strings (never floats or 32-bit integers)
in the ledger's one decimal grammar, and ISO 8601 times within the ledger's years.

A value out of its range is refused here, as INVALID_INPUT, before any resolver runs; the ranges
themselves live in `ledger.core.bounds`, which the ledger's `validate` applies again per field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from ledger.core import bounds
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits, format_credits


def id_of(value: object | None) -> strawberry.ID | None:
    """An optional id on the way out: null stays null."""
    return None if value is None else strawberry.ID(str(value))


def _parse_credits(value: object) -> MicroCredits:
    if not isinstance(value, str):
        raise ValueError('credits are written as a decimal string, e.g. "12.5"')
    try:
        return MicroCredits(bounds.parse_credits(value, negative=True))
    except InvalidCommand as error:
        raise ValueError(error.message) from None


QUANTITY_TEXT = 'a quantity is written as a decimal string, e.g. "1500" or "0.25"'


def parse_quantity(value: object) -> Decimal:
    """A quantity as the wire writes it (GraphQL's Quantity, the ingest route's `quantity`): a
    decimal string in the one grammar, or a JSON integer taken as its text; never a bool (an int in
    Python) or a float. Raises InvalidCommand."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidCommand(QUANTITY_TEXT)
    quantity = bounds.parse_decimal(str(value))
    bounds.check_decimal(quantity, "a quantity", bounds.QUANTITY_MAX)
    return quantity


def _parse_quantity(value: object) -> Decimal:
    try:
        return parse_quantity(value)
    except InvalidCommand as error:
        raise ValueError(error.message) from None


def parse_time(value: object) -> dt.datetime:
    """A time as the wire writes it (GraphQL's DateTime, the ingest route's `occurredAt`): ISO 8601
    text within its length, read by `datetime.fromisoformat`, in the ledger's range and with an
    offset PostgreSQL reads (`bounds.check_time`). A time without an offset is refused where it is
    used (it would be read in the server's zone); its range is judged as if it were UTC. Raises
    InvalidCommand."""
    if not isinstance(value, str) or len(value) > bounds.DATETIME_TEXT_LENGTH_MAX:
        raise InvalidCommand("a time is an ISO 8601 string, e.g. 2026-01-31T12:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCommand(f"not an ISO 8601 time: {value!r}") from None
    bounds.check_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC), "a time")
    return parsed


def _parse_datetime(value: object) -> dt.datetime:
    try:
        return parse_time(value)
    except InvalidCommand as error:
        raise ValueError(error.message) from None


Credits = NewType("Credits", int)
Quantity = NewType("Quantity", Decimal)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    Credits: strawberry.scalar(
        name="Credits",
        description=(
            "An exact amount of credits as a decimal string with up to 6 decimal places "
            '(one micro-credit is the smallest unit), e.g. "70" or "0.000125"; at most '
            f"{bounds.CREDITS_MAX_WHOLE:,} credits either way."
        ),
        serialize=format_credits,
        parse_value=_parse_credits,
    ),
    Quantity: strawberry.scalar(
        name="Quantity",
        description=(
            'An exact usage quantity or rate as a decimal string, e.g. "1500" or "0.25": ASCII digits, at '
            f"most one point between digits, at most {bounds.QUANTITY_DECIMALS_MAX} decimals, at most "
            f"{bounds.QUANTITY_MAX:,}."
        ),
        serialize=str,
        parse_value=_parse_quantity,
    ),
    dt.datetime: strawberry.scalar(
        name="DateTime",
        description=(
            "A time in ISO 8601 with its offset, e.g. 2026-01-31T12:00:00Z, from "
            f"{bounds.TIME_MIN:%Y-%m-%d} to before {bounds.TIME_MAX:%Y-%m-%d}."
        ),
        serialize=dt.datetime.isoformat,
        parse_value=_parse_datetime,
    ),
}
