from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.bounds import CREDITS_MAX
from ledger.core.errors import InvalidCommand
from ledger.core.money import MICRO_PER_CREDIT, format_credits, parse_credits, price


@given(st.integers(min_value=-CREDITS_MAX, max_value=CREDITS_MAX))
def test_format_then_parse_is_the_identity(micro: int) -> None:
    assert parse_credits(format_credits(micro)) == micro


@pytest.mark.parametrize(
    ("text", "micro"),
    [("70", 70_000_000), ("0.5", 500_000), ("0.000001", 1), ("1.250000", 1_250_000), ("-3", -3_000_000)],
)
def test_parse_credits(text: str, micro: int) -> None:
    assert parse_credits(text) == micro


@pytest.mark.parametrize(
    "text",
    [
        "", "abc", "NaN", "Infinity", "1e3", "0.0000001", "1" * 60, "--1",
        # One grammar: ASCII digits, a leading minus, one point between digits.
        "١٢٣", "\uff11\uff12", "1_000", "+5", " 5 ", "5.", ".5", "1.2.3", "-", "0x10", "5\n",
        # More than six decimals, however long the number (never rounded).
        "1.0000001", "0." + "0" * 50 + "1",
        # Past a trillion credits: it would overflow a sum of the store's 64-bit columns.
        "1000000000000.000001", "1000000000001", "1" + "0" * 30, "-1000000000000.000001",
    ],
)  # fmt: skip
def test_parse_credits_refuses(text: str) -> None:
    with pytest.raises(InvalidCommand):
        parse_credits(text)


def test_the_range_ends_at_a_trillion_credits() -> None:
    assert parse_credits("1000000000000") == CREDITS_MAX == 10**18
    assert parse_credits("-1000000000000") == -CREDITS_MAX
    assert parse_credits("0001.500000000") == 1_500_000  # leading and trailing zeros are exact


def test_format_credits_has_no_trailing_zeros() -> None:
    assert [format_credits(x) for x in (70_000_000, 500_000, 1, 0, -1_500_000)] == [
        "70",
        "0.5",
        "0.000001",
        "0",
        "-1.5",
    ]


def test_price_rounds_up_to_the_micro_credit() -> None:
    # 1 credit per 1,000 tokens: 500 tokens cost exactly half a credit.
    assert price(Decimal(500), Decimal("0.001")) == 500_000
    assert price(Decimal(1), Decimal("0.0000001")) == 1  # a tenth of a micro-credit rounds up
    assert price(Decimal(10), Decimal("0.0000001")) == 1


@given(
    st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=10**3, places=7, allow_nan=False, allow_infinity=False),
)
def test_price_is_the_exact_product_rounded_up(quantity: Decimal, rate: Decimal) -> None:
    charged = price(quantity, rate)
    exact = quantity * rate * MICRO_PER_CREDIT
    assert charged >= exact > charged - 1 or (exact == 0 and charged == 0)
