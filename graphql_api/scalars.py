"""Exact amounts on the wire: decimal strings, never floats or 32-bit integers."""

from __future__ import annotations

from decimal import Decimal
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from ledger.core.money import AmountError, MicroCredits, format_credits, parse_credits, parse_decimal


def _parse_credits(value: object) -> MicroCredits:
    if not isinstance(value, str):
        raise ValueError('credits are written as a decimal string, e.g. "12.5"')
    try:
        return parse_credits(value)
    except AmountError as error:
        raise ValueError(str(error)) from error


def _parse_quantity(value: object) -> Decimal:
    if not isinstance(value, str | int):
        raise ValueError('a quantity is written as a decimal string, e.g. "1500" or "0.25"')
    try:
        return parse_decimal(str(value))
    except AmountError as error:
        raise ValueError(str(error)) from error


Credits = NewType("Credits", int)
Quantity = NewType("Quantity", Decimal)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    Credits: strawberry.scalar(
        name="Credits",
        description=(
            "An exact amount of credits as a decimal string with up to 6 decimal places "
            '(one micro-credit is the smallest unit), e.g. "70" or "0.000125".'
        ),
        serialize=format_credits,
        parse_value=_parse_credits,
    ),
    Quantity: strawberry.scalar(
        name="Quantity",
        description='An exact usage quantity in the product\'s native unit, as a decimal string, e.g. "1500".',
        serialize=str,
        parse_value=_parse_quantity,
    ),
}
