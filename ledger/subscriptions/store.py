"""Subscriptions in PostgreSQL: `subscriptions`, their plan segments (`subscription_plans`), seat
changes and the charges they owe (`billing_charges`).

Plain functions over a connection (the caller owns the transaction): a read `for_update` takes the
subscription's row lock, so every change to one subscription (seats, plan, cancel, a period's
turnover) runs after the others. Rows come back as the pure `ledger.billing.subscription` types.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias
from uuid import UUID

import asyncpg

from ledger.billing.catalog import Interval
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.core.money import MicroCredits

Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class BillingCharge:
    """One line of what an organization owes, before it is invoiced. `idempotency_key` names the
    fact that caused it (a period's price, a seat change, an upgrade), so it is written once."""

    id: UUID
    organization_id: UUID
    subscription_id: UUID | None
    idempotency_key: str
    kind: str  # 'plan', 'seats', 'kits', 'proration', 'pack'
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # negative: a credit on the next invoice
    currency: str
    period_start: datetime | None = None
    period_end: datetime | None = None
    created_at: datetime | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class SeatChange:
    """A seat quantity change and the proration it was charged (`amount`) and granted (`credits`,
    negative: taken back)."""

    id: UUID
    subscription_id: UUID
    organization_id: UUID
    at: datetime
    seats_before: int
    seats_after: int
    credits: MicroCredits
    amount: Decimal
    currency: str
    created_at: datetime | None = None  # set by the store


_COLUMNS = """
id, org_id, plan_key, interval, seats, anchor, timezone, status, created_at, trial_ends_at,
cancel_at_period_end, pending_plan_key, ends_at, media_purge_at
"""
_INSERT = """
INSERT INTO subscriptions (id, org_id, plan_key, interval, seats, anchor, timezone, status, trial_ends_at,
                           cancel_at_period_end, pending_plan_key, ends_at, media_purge_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING created_at
"""
_ADD_SEGMENT = """
INSERT INTO subscription_plans (org_id, subscription_id, effective_at, plan_key, seats) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (org_id, subscription_id, effective_at) DO UPDATE SET plan_key = excluded.plan_key, seats = excluded.seats
"""
_SEGMENTS = """
SELECT subscription_id, effective_at, plan_key, seats FROM subscription_plans
WHERE subscription_id = ANY($1::uuid[]) ORDER BY subscription_id, effective_at
"""
_BY_ID = f"SELECT {_COLUMNS} FROM subscriptions WHERE id = $1"  # noqa: S608 - a constant column list
_LIVE = f"SELECT {_COLUMNS} FROM subscriptions WHERE org_id = $1 AND status <> 'canceled'"  # noqa: S608 - a constant column list
_LATEST_OF_ORGS = f"""
SELECT DISTINCT ON (org_id) {_COLUMNS} FROM subscriptions WHERE org_id = ANY($1::uuid[])
ORDER BY org_id, (status <> 'canceled') DESC, created_at DESC
"""  # noqa: S608 - a constant column list
_UPDATE = """
UPDATE subscriptions
SET status = $2, seats = $3, plan_key = $4, pending_plan_key = $5, cancel_at_period_end = $6, ends_at = $7,
    media_purge_at = $8, trial_ends_at = $9, updated_at = now()
WHERE id = $1
"""


def _subscription(row: asyncpg.Record, segments: tuple[PlanSegment, ...]) -> Subscription:
    return Subscription(
        id=row["id"],
        organization_id=row["org_id"],
        plan_key=row["plan_key"],
        interval=Interval(row["interval"]),
        seats=row["seats"],
        anchor=row["anchor"],
        timezone=row["timezone"],
        status=SubscriptionStatus(row["status"]),
        created_at=row["created_at"],
        trial_ends_at=row["trial_ends_at"],
        cancel_at_period_end=row["cancel_at_period_end"],
        pending_plan_key=row["pending_plan_key"],
        ends_at=row["ends_at"],
        media_purge_at=row["media_purge_at"],
        segments=segments,
    )


async def _with_segments(connection: Connection, rows: list[asyncpg.Record]) -> list[Subscription]:
    found: dict[UUID, list[PlanSegment]] = {row["id"]: [] for row in rows}
    for segment in await connection.fetch(_SEGMENTS, list(found)):
        found[segment["subscription_id"]].append(
            PlanSegment(segment["effective_at"], segment["plan_key"], segment["seats"])
        )
    return [_subscription(row, tuple(found[row["id"]])) for row in rows]


async def insert_subscription(connection: Connection, subscription: Subscription) -> Subscription:
    """Store a new subscription and its first segment (`segments[0]`, or the plan and seats from the
    anchor). A second live one for the org violates `subscriptions_one_live` (the caller maps it)."""
    s = subscription
    created_at = await connection.fetchval(
        _INSERT,
        s.id,
        s.organization_id,
        s.plan_key,
        s.interval.value,
        s.seats,
        s.anchor,
        s.timezone,
        s.status.value,
        s.trial_ends_at,
        s.cancel_at_period_end,
        s.pending_plan_key,
        s.ends_at,
        s.media_purge_at,
    )
    first = s.segments[0] if s.segments else PlanSegment(s.anchor, s.plan_key, s.seats)
    await add_segment(connection, s.organization_id, s.id, first)
    return replace(s, created_at=created_at, segments=(first,))


async def add_segment(
    connection: Connection, organization_id: UUID, subscription_id: UUID, segment: PlanSegment
) -> None:
    """The plan and seats in force from `segment.effective_at` (a second one at the same time replaces it)."""
    await connection.execute(
        _ADD_SEGMENT, organization_id, subscription_id, segment.effective_at, segment.plan_key, segment.seats
    )


async def subscription_by_id(connection: Connection, id: UUID, *, for_update: bool = False) -> Subscription | None:
    rows = await connection.fetch(_BY_ID + (" FOR UPDATE" if for_update else ""), id)
    found = await _with_segments(connection, rows)
    return found[0] if found else None


async def live_subscription_of(
    connection: Connection, organization_id: UUID, *, for_update: bool = False
) -> Subscription | None:
    """The org's subscription that has not ended (at most one: `subscriptions_one_live`)."""
    rows = await connection.fetch(_LIVE + (" FOR UPDATE" if for_update else ""), organization_id)
    found = await _with_segments(connection, rows)
    return found[0] if found else None


async def latest_subscriptions_of_orgs(
    connection: Connection, organization_ids: list[UUID]
) -> dict[UUID, Subscription]:
    """Each org's live subscription, or else its latest ended one (history stays readable)."""
    found = await _with_segments(connection, await connection.fetch(_LATEST_OF_ORGS, organization_ids))
    return {s.organization_id: s for s in found}


async def update_subscription(connection: Connection, subscription: Subscription) -> None:
    """Write the subscription's changing columns (its segments are added with `add_segment`)."""
    s = subscription
    await connection.execute(
        _UPDATE,
        s.id,
        s.status.value,
        s.seats,
        s.plan_key,
        s.pending_plan_key,
        s.cancel_at_period_end,
        s.ends_at,
        s.media_purge_at,
        s.trial_ends_at,
    )


_INSERT_CHARGE = """
INSERT INTO billing_charges (id, org_id, subscription_id, idempotency_key, kind, description, period_start,
                             period_end, quantity, unit_price, amount, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (org_id, idempotency_key) DO NOTHING
"""


async def insert_charge(connection: Connection, charge: BillingCharge) -> bool:
    """Record a charge line once: False when its idempotency key was recorded already."""
    c = charge
    status = await connection.execute(
        _INSERT_CHARGE,
        c.id,
        c.organization_id,
        c.subscription_id,
        c.idempotency_key,
        c.kind,
        c.description,
        c.period_start,
        c.period_end,
        c.quantity,
        c.unit_price,
        c.amount,
        c.currency,
    )
    return bool(status == "INSERT 0 1")


_CHARGE_COLUMNS = """
id, org_id AS organization_id, subscription_id, idempotency_key, kind, description, quantity, unit_price,
amount, currency, period_start, period_end, created_at
"""
_CHARGES = f"""
SELECT {_CHARGE_COLUMNS} FROM billing_charges WHERE org_id = $1 AND subscription_id = $2
ORDER BY created_at, idempotency_key
"""  # noqa: S608 - a constant column list


async def charges_of(connection: Connection, organization_id: UUID, subscription_id: UUID) -> list[BillingCharge]:
    """A subscription's charge lines, oldest first."""
    return [BillingCharge(**dict(row)) for row in await connection.fetch(_CHARGES, organization_id, subscription_id)]


_INSERT_SEAT_CHANGE = """
INSERT INTO seat_changes (id, subscription_id, org_id, at, seats_before, seats_after, credits, amount, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id, org_id) DO NOTHING
"""
_SEAT_CHANGE = """
SELECT id, subscription_id, org_id AS organization_id, at, seats_before, seats_after, credits, amount, currency,
       created_at
FROM seat_changes WHERE id = $1
"""
_SEAT_CHANGES = """
SELECT id, subscription_id, org_id AS organization_id, at, seats_before, seats_after, credits, amount, currency,
       created_at
FROM seat_changes WHERE subscription_id = $1 ORDER BY at, created_at
"""


async def insert_seat_change(connection: Connection, change: SeatChange) -> bool:
    """Record a seat change once: False when one with its id was recorded already."""
    c = change
    status = await connection.execute(
        _INSERT_SEAT_CHANGE,
        c.id,
        c.subscription_id,
        c.organization_id,
        c.at,
        c.seats_before,
        c.seats_after,
        c.credits,
        c.amount,
        c.currency,
    )
    return bool(status == "INSERT 0 1")


def _seat_change(row: asyncpg.Record) -> SeatChange:
    data = dict(row)
    data["credits"] = MicroCredits(data["credits"])
    return SeatChange(**data)


async def seat_change_by_id(connection: Connection, id: UUID) -> SeatChange | None:
    row = await connection.fetchrow(_SEAT_CHANGE, id)
    return None if row is None else _seat_change(row)


async def seat_changes_of(connection: Connection, subscription_id: UUID) -> list[SeatChange]:
    return [_seat_change(row) for row in await connection.fetch(_SEAT_CHANGES, subscription_id)]


@dataclass(frozen=True, slots=True)
class PlanChange:
    """A plan change and what it was charged (`amount`) and granted (`credits`): at once when
    `immediate` (an upgrade), else at `effective_at`, the billing period's end."""

    id: UUID
    subscription_id: UUID
    organization_id: UUID
    at: datetime
    plan_before: str
    plan_after: str
    seats: int
    immediate: bool
    effective_at: datetime
    credits: MicroCredits
    amount: Decimal
    currency: str
    created_at: datetime | None = None  # set by the store


_PLAN_CHANGE_COLUMNS = """
id, subscription_id, org_id AS organization_id, at, plan_before, plan_after, seats, immediate, effective_at,
credits, amount, currency, created_at
"""
_INSERT_PLAN_CHANGE = """
INSERT INTO plan_changes (id, subscription_id, org_id, at, plan_before, plan_after, seats, immediate, effective_at,
                          credits, amount, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id, org_id) DO NOTHING
"""
_PLAN_CHANGE = f"SELECT {_PLAN_CHANGE_COLUMNS} FROM plan_changes WHERE id = $1"  # noqa: S608 - a constant column list


async def insert_plan_change(connection: Connection, change: PlanChange) -> bool:
    """Record a plan change once: False when one with its id was recorded already."""
    c = change
    status = await connection.execute(
        _INSERT_PLAN_CHANGE, c.id, c.subscription_id, c.organization_id, c.at, c.plan_before, c.plan_after,
        c.seats, c.immediate, c.effective_at, c.credits, c.amount, c.currency,
    )  # fmt: skip
    return bool(status == "INSERT 0 1")


async def plan_change_by_id(connection: Connection, id: UUID) -> PlanChange | None:
    row = await connection.fetchrow(_PLAN_CHANGE, id)
    if row is None:
        return None
    data = dict(row)
    data["credits"] = MicroCredits(data["credits"])
    return PlanChange(**data)
