"""Money in minor units: exact conversions both ways and babel's formatting per locale."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.billing.money_format import (
    format_minor,
    format_money,
    from_minor,
    known_locale,
    round_minor,
    to_minor,
)


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        (1150, "USD", "en_US", "$11.50"),
        (123450, "EUR", "de_DE", "1.234,50\xa0€"),
        (123450, "EUR", "en_US", "€1,234.50"),
        (-500, "USD", "en_US", "-$5.00"),
        (0, "USD", "en_US", "$0.00"),
        (1234, "JPY", "en_US", "¥1,234"),  # no minor unit
        (1234, "KWD", "en_US", "KWD1.234"),  # three decimals
        (99500, "GBP", "en_GB", "£995.00"),
        (100000000000, "USD", "en_US", "$1,000,000,000.00"),
    ],
)
def test_minor_units_are_formatted_for_the_locale(amount: int, currency: str, locale: str, shown: str) -> None:
    assert format_minor(amount, currency, locale) == shown


def test_a_unit_price_keeps_its_decimals() -> None:
    # An overage rate of $0.0015 a token is shown as it is priced, not rounded to a cent.
    assert format_money(Decimal("0.0015"), "USD") == "$0.0015"
    assert format_money(Decimal("20"), "EUR", "de_DE") == "20,00\xa0€"
    assert format_money(Decimal("0.5"), "USD") == "$0.50"


def test_conversions_are_exact() -> None:
    assert to_minor(Decimal("11.50"), "USD") == 1150
    assert to_minor(Decimal("11.5"), "USD") == 1150
    assert to_minor(Decimal("995"), "JPY") == 995
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    assert to_minor(Decimal("-0.01"), "usd") == -1
    assert from_minor(1150, "USD") == Decimal("11.50")
    assert str(from_minor(1150, "USD")) == "11.50"
    assert from_minor(5, "JPY") == Decimal(5)
    assert from_minor(-1, "KWD") == Decimal("-0.001")


@pytest.mark.parametrize("amount", ["11.505", "0.001", "NaN", "Infinity"])
def test_an_amount_finer_than_the_minor_unit_is_refused(amount: str) -> None:
    with pytest.raises(ValueError, match=r"decimals|not an amount"):
        to_minor(Decimal(amount), "USD")
    assert to_minor(round_minor(Decimal("11.505"), "USD"), "USD") == 1151  # rounding is the caller's, half up


def test_rounding_is_half_up() -> None:
    assert round_minor(Decimal("0.125"), "USD") == Decimal("0.13")
    assert round_minor(Decimal("-0.125"), "USD") == Decimal("-0.13")
    assert round_minor(Decimal("2.5"), "JPY") == Decimal(3)


def test_locales() -> None:
    assert known_locale("de_DE") and known_locale("en_US") and known_locale("fr")
    assert not known_locale("xx_YY") and not known_locale("") and not known_locale("../../etc")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
def test_minor_units_round_trip(amount: int, currency: str) -> None:
    assert to_minor(from_minor(amount, currency), currency) == amount
