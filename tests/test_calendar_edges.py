"""Calendar edges the property tests do not reach by chance."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.billing.calendar import Calendar


def test_an_anchor_in_the_repeated_dst_hour_starts_period_zero_at_the_anchor() -> None:
    # 2026-11-01 06:30Z is the second 01:30 in New York (EST); read naively it is the first (EDT), 05:30Z.
    anchor = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    calendar = Calendar(anchor, "America/New_York")
    assert calendar.period(0).start == anchor
    assert calendar.period(0).end == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert calendar.index_at(anchor) == 0
