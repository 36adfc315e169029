"""Auto-recharge's pure rules: a month's recharges never pass the cap, whatever the crossings; the
cap as written; the month a recharge counts in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.billing.auto_recharge import RechargeStatus, decide, month_of, monthly_cap
from ledger.core.errors import InvalidCommand


@given(
    cap=st.integers(min_value=1, max_value=10**8),
    prices=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=50),
)
def test_the_crossings_of_a_month_never_charge_past_the_cap(cap: int, prices: list[int]) -> None:
    charged = 0
    for price in prices:  # the pack's price may change between crossings
        decision = decide(True, price, "USD", cap, charged)
        if decision.status is RechargeStatus.STARTED:
            assert decision.amount == price
            charged += decision.amount
        else:
            assert decision.status is RechargeStatus.OVER_CAP and decision.amount == 0
            assert charged + price > cap
        assert charged <= cap


def test_off_or_unsold_charges_nothing() -> None:
    assert decide(False, 15_000, "USD", 30_000, 0).status is RechargeStatus.DISABLED
    assert decide(True, None, "USD", 30_000, 0).status is RechargeStatus.DISABLED
    over = decide(True, 15_000, "USD", 30_000, 20_000)
    assert over.detail == "monthly cap reached: 200.00 of 300.00 USD charged"


def test_the_cap_is_money_in_the_currency_at_least_one_pack() -> None:
    assert monthly_cap(Decimal("300"), "USD", 15_000) == 30_000
    assert monthly_cap(Decimal("300.5"), "USD", 15_000) == 30_050
    assert monthly_cap(Decimal("20000"), "JPY", 1_500) == 20_000
    for text, currency in (("0", "USD"), ("149.99", "USD"), ("300.001", "USD"), ("1.5", "JPY"), ("1000001", "USD")):
        with pytest.raises(InvalidCommand):
            monthly_cap(Decimal(text), currency, 150 if currency == "JPY" else 15_000)


def test_a_recharge_counts_in_its_calendar_month_in_utc() -> None:
    assert month_of(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == date(2026, 3, 1)
    # 00:30 on April 1st in Berlin is still March in UTC.
    berlin = timezone(timedelta(hours=2))
    assert month_of(datetime(2026, 4, 1, 0, 30, tzinfo=berlin)) == date(2026, 3, 1)
