"""Subscriptions' rows: stored and read back with their plan segments, one live subscription per
organization, a charge and a seat change recorded once."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from ledger.billing.catalog import Interval
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.core.money import MicroCredits
from ledger.directory.organizations import create_organization
from ledger.subscriptions import store

ANCHOR = datetime(2026, 1, 31, 5, tzinfo=UTC)


def _subscription(org: uuid.UUID) -> Subscription:
    return Subscription(
        id=uuid.uuid4(),
        organization_id=org,
        plan_key="seatsco-team",
        interval=Interval.MONTHLY,
        seats=4,
        anchor=ANCHOR,
        timezone="America/New_York",
        status=SubscriptionStatus.ACTIVE,
        created_at=ANCHOR,
    )


async def test_a_subscription_reads_back_with_its_segments_oldest_first(pool: asyncpg.Pool) -> None:
    org = uuid.uuid4()
    await create_organization(pool, org, "SeatsCo")
    async with pool.acquire() as connection, connection.transaction():
        stored = await store.insert_subscription(connection, _subscription(org))
        later = PlanSegment(datetime(2026, 2, 15, tzinfo=UTC), "seatsco-team", 5)
        await store.add_segment(connection, org, stored.id, later)
        await store.update_subscription(connection, replace(stored, seats=5, cancel_at_period_end=True))
        locked = await store.subscription_by_id(connection, stored.id, for_update=True)
    assert locked is not None
    assert locked.segments == (PlanSegment(ANCHOR, "seatsco-team", 4), later)
    assert (locked.seats, locked.cancel_at_period_end, locked.timezone) == (5, True, "America/New_York")
    assert await store.live_subscription_of(pool, org) == locked
    assert await store.subscription_by_id(pool, uuid.uuid4()) is None
    with pytest.raises(asyncpg.UniqueViolationError, match="subscriptions_one_live"):
        await store.insert_subscription(pool, _subscription(org))


async def test_a_charge_and_a_seat_change_are_recorded_once(pool: asyncpg.Pool) -> None:
    org = uuid.uuid4()
    await create_organization(pool, org, "SeatsCo")
    subscription = await store.insert_subscription(pool, _subscription(org))
    charge = store.BillingCharge(
        uuid.uuid4(), org, subscription.id, "seats:x", "seats", "1 seat", Decimal(1), Decimal(5), Decimal(5), "USD"
    )
    assert await store.insert_charge(pool, charge)
    assert not await store.insert_charge(pool, replace(charge, id=uuid.uuid4(), amount=Decimal(7)))
    [stored] = await store.charges_of(pool, org, subscription.id)
    assert (stored.amount, stored.idempotency_key) == (Decimal(5), "seats:x")
    change = store.SeatChange(
        uuid.uuid4(), subscription.id, org, ANCHOR, 4, 5, MicroCredits(50_000_000), Decimal("5.00"), "USD"
    )
    assert await store.insert_seat_change(pool, change)
    assert not await store.insert_seat_change(pool, change)
    assert [replace(c, created_at=None) for c in await store.seat_changes_of(pool, subscription.id)] == [change]
