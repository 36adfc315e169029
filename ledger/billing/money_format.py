"""Money in integer minor units, to and from `Decimal` major units, and formatted for a locale. Pure.

Our tables keep money as integer minor units with an ISO 4217 currency (`invoices`, `payments`);
the catalog prices in major units as `Decimal` (`billing_charges.amount`, a plan's price). These are
the one pair of conversions between the two, both exact: `to_minor` refuses an amount with more
decimals than the currency has (rounding is the caller's decision, made once per line, half up,
by `round_minor` or `ledger.billing.proration.prorated_money`), and `from_minor` never rounds.

Formatting is `babel`'s (`format_currency`): the symbol, its place and the separators of the locale
("$11.50" in en_US, "1.234,50 €" in de_DE), always from a `Decimal`, never a float, and with every
decimal the currency has (our minor-unit table is the judge of how many, not babel's).
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency

from ledger.billing.proration import minor_unit_decimals

DEFAULT_LOCALE = "en_US"
_CONTEXT = decimal.Context(prec=80, traps=[decimal.InvalidOperation, decimal.Overflow])


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit_decimals(currency))


def round_minor(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up (away from zero on a tie) to the currency's minor unit."""
    return amount.quantize(_quantum(currency), rounding=ROUND_HALF_UP, context=_CONTEXT)


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units (Decimal("11.50") USD) to integer minor units (1150); exact or refused."""
    if not amount.is_finite():
        raise ValueError(f"not an amount of money: {amount}")
    scaled = _CONTEXT.scaleb(amount, minor_unit_decimals(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency's minor unit")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    """Integer minor units (1150 USD) to major units (Decimal("11.50")), exact."""
    return _CONTEXT.scaleb(Decimal(amount), -minor_unit_decimals(currency)).quantize(
        _quantum(currency), context=_CONTEXT
    )


def known_locale(locale: str) -> bool:
    """Whether babel knows the locale (e.g. "en_US", "de_DE", "fr")."""
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


def format_minor(amount: int, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """1150 USD -> "$11.50"; 123450 EUR in de_DE -> "1.234,50 €"; -500 USD -> "-$5.00"."""
    return format_money(from_minor(amount, currency), currency, locale)


def format_money(amount: Decimal, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """A `Decimal` amount in major units, formatted with every decimal it has (a unit price such as
    $0.0015 per token is shown as it is, not rounded to the cent), at least the currency's own."""
    shown = amount if _decimals(amount) >= minor_unit_decimals(currency) else amount.quantize(_quantum(currency))
    return str(format_currency(shown, currency.upper(), locale=locale, decimal_quantization=False))


def _decimals(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
