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

from ledger.core import bounds

MicroCredits = NewType("MicroCredits", int)
ZERO = MicroCredits(0)

MICRO_PER_CREDIT = bounds.MICRO_PER_CREDIT
CREDIT_DECIMALS = bounds.CREDIT_DECIMALS
_QUANTUM = Decimal(1).scaleb(-CREDIT_DECIMALS)
# Money (cost of goods, overage) is kept to a millionth of the currency unit, rounded half up;
# invoices round to the currency's minor unit once, on their lines.
MONEY_DECIMALS = 6
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMALS)
# Wide enough that every product of bounded inputs (a 16-digit quantity with 12 decimals times a
# 10-digit rate with 12 decimals, times credits) is exact: nothing is rounded but where we say so.
# Arithmetic on `Decimal`s anywhere in the ledger goes through this context, never the default
# one (28 digits, which rounds silently).
_CONTEXT = decimal.Context(
    prec=80, rounding=decimal.ROUND_CEILING, traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Underflow]
)


def parse_credits(text: str) -> MicroCredits:
    """Parse credits written as a decimal string ("12", "0.5", "-3", "0.000001"), within the range."""
    return MicroCredits(bounds.parse_credits(text, negative=True))


def format_credits(amount: int) -> str:
    """Render micro-credits as a plain decimal string with no trailing zeros ("70", "0.5")."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), MICRO_PER_CREDIT)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:06d}".rstrip("0")


def price(quantity: Decimal, credits_per_unit: Decimal) -> MicroCredits:
    """Price a quantity at a rate, rounding up to the next micro-credit. The result may pass the
    ledger's range (a huge quantity at a high rate): callers judge it with `bounds.within_sum`."""
    exact = _CONTEXT.multiply(quantity, credits_per_unit)
    micro = _CONTEXT.scaleb(exact.quantize(_QUANTUM, context=_CONTEXT), CREDIT_DECIMALS)
    return MicroCredits(int(micro))


def money(quantity: Decimal, price_per_unit: Decimal) -> Decimal:
    """What `quantity` costs at `price_per_unit`, exact, then kept to a millionth (half up)."""
    return round_money(_CONTEXT.multiply(quantity, price_per_unit))


def share_money(quantity: Decimal, part: int, whole: int, price_per_unit: Decimal) -> Decimal:
    """The money for the `part / whole` share of `quantity` at `price_per_unit` (an overage's share)."""
    numerator = _CONTEXT.multiply(_CONTEXT.multiply(quantity, Decimal(part)), price_per_unit)
    return round_money(_CONTEXT.divide(numerator, Decimal(whole)))


def credits_money(amount: int, price_per_credit: Decimal) -> Decimal:
    """What `amount` micro-credits are worth at `price_per_credit` (a refund at its cost basis)."""
    credits = _CONTEXT.scaleb(Decimal(amount), -CREDIT_DECIMALS)
    return round_money(_CONTEXT.multiply(credits, price_per_credit))


def round_money(value: Decimal) -> Decimal:
    return value.quantize(_MONEY_QUANTUM, rounding=decimal.ROUND_HALF_UP, context=_CONTEXT)
