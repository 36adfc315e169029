"""Exact credit arithmetic.

Credits are held as integers in micro-credits (one credit = 1,000,000 micro-credits), chosen once and
generously: a signed 64-bit column holds 9.2 trillion credits. Usage quantities and rates are
`Decimal`; a priced amount is rounded *up* to the next micro-credit per event, so fractional usage
is never given away and never charged twice (the rounding is per event, never on aggregates).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import NewType

MicroCredits = NewType("MicroCredits", int)
ZERO = MicroCredits(0)

MICRO_PER_CREDIT = 1_000_000
CREDIT_DECIMALS = 6
# A quantity or rate with more digits than this is refused rather than silently rounded.
DECIMAL_DIGITS_MAX = 38
_QUANTUM = Decimal(1).scaleb(-CREDIT_DECIMALS)
# Money (cost of goods, overage) is kept to a millionth of the currency unit, rounded half up;
# invoices round to the currency's minor unit once, on their lines.
MONEY_DECIMALS = 6
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMALS)
_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_CEILING, traps=[decimal.InvalidOperation])


class AmountError(ValueError):
    """A textual amount that is not a finite decimal of the accepted precision."""


def parse_decimal(text: str) -> Decimal:
    """Parse a finite decimal from text, refusing NaN, infinities, exponents and overlong input."""
    stripped = text.strip()
    if not stripped or len(stripped) > DECIMAL_DIGITS_MAX + 2 or "e" in stripped.lower():
        raise AmountError(f"not a decimal number: {text!r}")
    try:
        value = Decimal(stripped)
    except decimal.InvalidOperation as error:
        raise AmountError(f"not a decimal number: {text!r}") from error
    if not value.is_finite():
        raise AmountError(f"not a finite number: {text!r}")
    return value


def credits_from_decimal(value: Decimal) -> MicroCredits:
    """Convert whole or fractional credits to micro-credits, refusing sub-micro precision."""
    micro = value.scaleb(CREDIT_DECIMALS)
    if micro != micro.to_integral_value():
        raise AmountError(f"more than {CREDIT_DECIMALS} decimal places: {value}")
    return MicroCredits(int(micro))


def parse_credits(text: str) -> MicroCredits:
    """Parse credits written as a decimal string ("12", "0.5", "0.000001")."""
    return credits_from_decimal(parse_decimal(text))


def format_credits(amount: int) -> str:
    """Render micro-credits as a plain decimal string with no trailing zeros ("70", "0.5")."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), MICRO_PER_CREDIT)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:06d}".rstrip("0")


def price(quantity: Decimal, credits_per_unit: Decimal) -> MicroCredits:
    """Price a quantity at a rate, rounding up to the next micro-credit."""
    exact = _CONTEXT.multiply(quantity, credits_per_unit)
    return credits_from_decimal(exact.quantize(_QUANTUM, context=_CONTEXT))


def round_money(value: Decimal) -> Decimal:
    return value.quantize(_MONEY_QUANTUM, rounding=decimal.ROUND_HALF_UP, context=_CONTEXT)
