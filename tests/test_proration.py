"""Proration to the second, pure: the seeds' figures exactly, and for any change at any second the
prorated credits and money never pass the full period's, a change and its reversal at the same
second net to nothing, and a change split in steps never gives more than made at once."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Catalog, Interval, Plan
from ledger.billing.proration import (
    PlanSwitch,
    SeatQuantity,
    minor_unit_decimals,
    monthly_credits,
    period_price,
    prorate,
    prorated_money,
)
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits
from ledger.subscriptions.seats import replayed, seat_proration
from ledger.subscriptions.store import SeatChange

CREDIT = 1_000_000
JAN = datetime(2026, 1, 1, tzinfo=UTC)
TEAM = Plan(
    "seatsco-team", "Team", JAN, per_seat=True, credits_per_seat=MicroCredits(100 * CREDIT),
    prices={Interval.MONTHLY: Decimal(10), Interval.ANNUAL: Decimal(100)},
)  # fmt: skip
SELL = Plan("meclabs-sell", "SELL", JAN, prices={Interval.MONTHLY: Decimal(995)}, credits=MicroCredits(18_000 * CREDIT),
            kits_included=10, extra_kit_price=Decimal(20), members_max=12, rank=2)  # fmt: skip
SCALE = Plan("meclabs-scale", "SCALE", JAN, prices={Interval.MONTHLY: Decimal(2995)},
             credits=MicroCredits(75_000 * CREDIT), kits_included=45, rank=3)  # fmt: skip
BUILD = Plan("meclabs-build", "BUILD", JAN, prices={Interval.MONTHLY: Decimal(495)},
             credits=MicroCredits(6_000 * CREDIT), rank=1)  # fmt: skip
ARCHIVE = Plan("act3-archive", "Archive", JAN, prices={Interval.MONTHLY: Decimal(0)}, generation=False, rank=99)


def calendars(anchor: datetime, timezone: str, interval: Interval) -> tuple[Calendar, Calendar]:
    return Calendar.of(anchor, timezone, interval), Calendar.of(anchor, timezone, Interval.MONTHLY)


def test_the_fifth_seat_at_half_the_month_brings_exactly_fifty_credits() -> None:
    # January has 31 days: half of it is 15 days and 12 hours.
    half = JAN + timedelta(days=15, hours=12)
    proration = prorate(TEAM, Interval.ANNUAL, 4, calendars(JAN, "UTC", Interval.ANNUAL), SeatQuantity(5), half)
    (line,) = proration.lines
    assert (proration.credits, proration.credit_fraction) == (50 * CREDIT, Fraction(1, 2))
    # The money is a year's seat for what is left of the year: 100 x (365 - 15.5) / 365 = 95.753424...
    assert (line.quantity, line.unit_price, line.amount) == (Decimal(1), Decimal(100), Decimal("95.75"))
    assert proration.immediate and proration.effective_at == half
    back = prorate(TEAM, Interval.ANNUAL, 5, calendars(JAN, "UTC", Interval.ANNUAL), SeatQuantity(4), half)
    assert (back.credits, back.amount) == (-50 * CREDIT, Decimal("-95.75"))


def test_an_upgrade_applies_at_once_and_a_downgrade_at_the_period_end() -> None:
    at = JAN + timedelta(days=15, hours=12)
    up = prorate(SELL, Interval.MONTHLY, 0, calendars(JAN, "UTC", Interval.MONTHLY), PlanSwitch(SCALE), at)
    (line,) = up.lines
    # The month's SELL base is kept: the upgrade grants what SCALE adds, (75,000 - 18,000) / 2.
    assert (line.unit_price, line.amount, line.credits) == (Decimal(2000), Decimal(1000), 28_500 * CREDIT)
    assert up.immediate and up.plan_after == SCALE
    for lower in (BUILD, ARCHIVE):
        down = prorate(SCALE, Interval.MONTHLY, 0, calendars(JAN, "UTC", Interval.MONTHLY), PlanSwitch(lower), at)
        assert (down.immediate, down.effective_at, down.lines) == (False, datetime(2026, 2, 1, tzinfo=UTC), ())
    stay = prorate(SELL, Interval.MONTHLY, 0, calendars(JAN, "UTC", Interval.MONTHLY), PlanSwitch(SELL), at)
    assert (stay.immediate, stay.plan_after, stay.lines) == (True, SELL, ())
    with pytest.raises(InvalidCommand, match="has 4 seats already"):
        prorate(TEAM, Interval.MONTHLY, 4, calendars(JAN, "UTC", Interval.MONTHLY), SeatQuantity(4), at)


def test_money_rounds_half_up_to_the_currency_minor_unit() -> None:
    assert prorated_money(Decimal("0.125"), Fraction(1), "USD") == Decimal("0.13")
    assert prorated_money(Decimal("-0.125"), Fraction(1), "USD") == Decimal("-0.13")
    assert prorated_money(Decimal(100), Fraction(1, 3), "JPY") == Decimal(33)
    assert (minor_unit_decimals("usd"), minor_unit_decimals("KWD")) == (2, 3)


ANCHORS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda local: local.replace(tzinfo=UTC)
)
ZONES = st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])
OFFSETS = st.integers(min_value=0, max_value=400 * 86_400)


@settings(max_examples=200, deadline=None)
@given(ANCHORS, ZONES, st.sampled_from(list(Interval)), OFFSETS, st.integers(0, 50), st.integers(-50, 50))
def test_a_seat_change_never_passes_the_full_period_and_its_reversal_nets_to_nothing(
    anchor: datetime, timezone: str, interval: Interval, offset: int, seats: int, delta: int
) -> None:
    after = seats + delta
    if delta == 0 or after < 0:
        return
    at = anchor + timedelta(seconds=offset)
    cals = calendars(anchor, timezone, interval)
    change = prorate(TEAM, interval, seats, cals, SeatQuantity(after), at)
    full_credits = abs(delta) * TEAM.credits_per_seat
    full_money = abs(delta) * (TEAM.price(interval) or Decimal(0))
    assert 0 <= abs(change.credits) <= full_credits and abs(change.amount) <= full_money
    assert (change.credits >= 0) == (change.amount >= 0) == (delta > 0)
    reversal = prorate(TEAM, interval, after, cals, SeatQuantity(seats), at)
    assert change.credits + reversal.credits == 0 and change.amount + reversal.amount == 0


@settings(max_examples=200, deadline=None)
@given(ANCHORS, ZONES, st.lists(st.integers(0, 31 * 86_400), min_size=1, max_size=8))
def test_seats_added_one_by_one_never_give_more_than_all_at_once_at_the_first(
    anchor: datetime, timezone: str, offsets: list[int]
) -> None:
    cals = calendars(anchor, timezone, Interval.MONTHLY)
    times = sorted(anchor + timedelta(seconds=offset) for offset in offsets)
    credit_period = cals[1].period_at(times[0])
    times = [at for at in times if credit_period.contains(at)]
    stepwise = [prorate(TEAM, Interval.MONTHLY, n, cals, SeatQuantity(n + 1), at) for n, at in enumerate(times)]
    at_once = prorate(TEAM, Interval.MONTHLY, 0, cals, SeatQuantity(len(times)), times[0])
    assert sum(p.credits for p in stepwise) <= at_once.credits <= len(times) * TEAM.credits_per_seat
    assert sum(p.amount for p in stepwise) <= at_once.amount + Decimal("0.01") * len(times)


@settings(max_examples=200, deadline=None)
@given(ANCHORS, ZONES, OFFSETS, st.integers(0, 40))
def test_an_upgrade_never_passes_the_new_plans_full_period(
    anchor: datetime, timezone: str, offset: int, seats: int
) -> None:
    at = anchor + timedelta(seconds=offset)
    cals = calendars(anchor, timezone, Interval.MONTHLY)
    up = prorate(SELL, Interval.MONTHLY, seats, cals, PlanSwitch(SCALE), at)
    difference = period_price(SCALE, Interval.MONTHLY, seats) - period_price(SELL, Interval.MONTHLY, seats)
    assert 0 <= up.credits <= monthly_credits(SCALE, seats) and 0 <= up.amount <= difference
    period = cals[1].period_at(at)
    if at == period.start:
        assert up.credits == monthly_credits(SCALE, seats) - monthly_credits(SELL, seats)


def test_chained_upgrades_at_the_period_start_grant_what_the_last_plan_alone_would() -> None:
    cals, base = calendars(JAN, "UTC", Interval.MONTHLY), monthly_credits(BUILD, 0)
    to_sell = prorate(BUILD, Interval.MONTHLY, 0, cals, PlanSwitch(SELL), JAN)
    to_scale = prorate(SELL, Interval.MONTHLY, 0, cals, PlanSwitch(SCALE), JAN + timedelta(seconds=1))
    assert base + to_sell.credits + to_scale.credits <= 75_000 * CREDIT
    assert base + to_sell.credits == 18_000 * CREDIT
    # An upgrade to a plan with fewer monthly credits grants none (never takes any back).
    rich = replace(BUILD, key="rich", credits=MicroCredits(90_000 * CREDIT), rank=1)
    assert prorate(rich, Interval.MONTHLY, 0, cals, PlanSwitch(SCALE), JAN).credits == 0


SUBSCRIPTION_ANCHOR = datetime(2026, 1, 31, 5, tzinfo=UTC)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(list(Interval)), st.integers(1, 30), st.integers(1, 30), st.integers(0, 27 * 86_400))
def test_a_recorded_seat_change_recomputes_to_exactly_its_preview(
    interval: Interval, before: int, after: int, offset: int
) -> None:
    """The preview, the change and a retry's answer are the one function on the same inputs: what the
    change records (its row) is enough to compute the very same proration again."""
    if before == after:
        return
    catalog = Catalog(plans={TEAM.key: (TEAM,)})
    subscription = Subscription(
        uuid.uuid4(), uuid.uuid4(), TEAM.key, interval, before, SUBSCRIPTION_ANCHOR, "Europe/Berlin",
        SubscriptionStatus.ACTIVE, SUBSCRIPTION_ANCHOR, segments=(PlanSegment(SUBSCRIPTION_ANCHOR, TEAM.key, before),),
    )  # fmt: skip
    at = SUBSCRIPTION_ANCHOR + timedelta(seconds=offset)
    previewed = seat_proration(subscription, catalog, after, at)
    row = SeatChange(
        uuid.uuid4(), subscription.id, subscription.organization_id, at, before, after, previewed.credits,
        previewed.amount, "USD",
    )  # fmt: skip
    changed = replace(subscription, seats=after, segments=(*subscription.segments, PlanSegment(at, TEAM.key, after)))
    assert replayed(changed, catalog, row) == previewed


def test_an_upgrade_out_of_a_trial_charges_the_new_price_share_as_the_trial_was_never_paid() -> None:
    at, cals = JAN + timedelta(days=15, hours=12), calendars(JAN, "UTC", Interval.MONTHLY)
    trial = prorate(SELL, Interval.MONTHLY, 0, cals, PlanSwitch(SCALE, from_trial=True), at)
    assert (trial.amount, trial.credits) == (Decimal("1497.50"), 28_500 * CREDIT)  # 2,995 / 2; SELL's base kept
    over = prorate(SELL, Interval.MONTHLY, 0, cals, PlanSwitch(SCALE, from_trial=True, trial_over=True), at)
    assert (over.amount, over.credits) == (Decimal("1497.50"), 37_500 * CREDIT)  # nothing granted since it ended
