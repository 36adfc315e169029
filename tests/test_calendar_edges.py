"""Calendar and charge edges the property tests do not reach by chance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Interval, Plan
from ledger.billing.charges import period_charges


def test_an_anchor_in_the_repeated_dst_hour_starts_period_zero_at_the_anchor() -> None:
    # 2026-11-01 06:30Z is the second 01:30 in New York (EST); read naively it is the first (EDT), 05:30Z.
    anchor = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    calendar = Calendar(anchor, "America/New_York")
    assert calendar.period(0).start == anchor
    assert calendar.period(0).end == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert calendar.index_at(anchor) == 0


def test_a_period_charge_rounds_half_up_like_a_proration() -> None:
    plan = Plan("p", "P", datetime(2026, 1, 1, tzinfo=UTC), prices={Interval.MONTHLY: Decimal("0.125")})
    (line,) = period_charges(plan, Interval.MONTHLY, seats=0, kits_used=0)
    assert line.amount == Decimal("0.13")  # half even would give 0.12
