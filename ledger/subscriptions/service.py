"""Subscribing, cancelling and resuming: each one PostgreSQL transaction that locks what it changes,
then the commands its facts cause (the plan's access; the first period's credits through the
turnover), sent under keys derived from those facts.

A subscription's id derives from (organization, the request's idempotency key): a retry finds the
subscription it made and answers it (sending its effects again, which the ledger applies once); the
same key with other details is IDEMPOTENCY_CONFLICT. An org has one live subscription
(SUBSCRIPTION_EXISTS; the unique index `subscriptions_one_live` settles a race).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from ledger.billing.calendar import add_period
from ledger.billing.catalog import Catalog, Interval, Plan
from ledger.billing.keys import period_key
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.billing.turnover import plan_access
from ledger.core.errors import IdempotencyConflict, SubscriptionExists, SubscriptionInactive
from ledger.store.catalog_versions import load_catalog
from ledger.stream.mailbox import Mailbox
from ledger.subscriptions import checks, store
from ledger.subscriptions.effects import Effects
from ledger.subscriptions.plan_effects import apply_limits, send
from ledger.subscriptions.turnover import advance_subscription


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    organization_id: UUID
    plan_key: str
    interval: Interval
    seats: int
    anchor: datetime | None  # None: now (a retry that leaves it out matches the first request's)
    timezone: str
    idempotency_key: str


def new_subscription(request: SubscribeRequest, plan: Plan, now: datetime) -> Subscription:
    """The subscription a request makes: trialing when the plan has a trial, archived on a plan
    without generation, else active."""
    r = replace(request, anchor=request.anchor or now)
    assert r.anchor is not None
    status, trial_ends_at, media_purge_at = SubscriptionStatus.ACTIVE, None, None
    if not plan.generation:
        status = SubscriptionStatus.ARCHIVED
        if plan.media_purge_days is not None:
            media_purge_at = add_period(r.anchor, days=plan.media_purge_days, timezone=r.timezone)
    elif plan.has_trial:
        status = SubscriptionStatus.TRIALING
        trial_ends_at = add_period(r.anchor, months=plan.trial_months, days=plan.trial_days, timezone=r.timezone)
    return Subscription(
        id=checks.subscription_id_for(r.organization_id, r.idempotency_key), organization_id=r.organization_id,
        plan_key=plan.key, interval=r.interval, seats=r.seats, anchor=r.anchor, timezone=r.timezone,
        status=status, created_at=now, trial_ends_at=trial_ends_at, media_purge_at=media_purge_at,
        segments=(PlanSegment(r.anchor, plan.key, r.seats),),
    )  # fmt: skip


def same_request(existing: Subscription, request: SubscribeRequest) -> Subscription:
    """A retried subscribe's answer: the subscription it made, unless it asked for another."""
    first = existing.segments[0]
    asked = (request.organization_id, request.plan_key, request.interval, request.seats,
             request.anchor or existing.anchor, request.timezone)  # fmt: skip
    made = (existing.organization_id, first.plan_key, existing.interval, first.seats, existing.anchor,
            existing.timezone)  # fmt: skip
    if asked != made:
        raise IdempotencyConflict("idempotencyKey was used for another subscription request")
    return existing


async def _create(connection: asyncpg.Connection, subscription: Subscription, plan: Plan) -> Subscription:
    async with connection.transaction():
        live = await store.live_subscription_of(connection, subscription.organization_id, for_update=True)
        if live is not None and live.id == subscription.id:
            return live  # this request's retry made it meanwhile: the caller compares the two
        if live is not None:
            raise SubscriptionExists("the organization has a live subscription: change its plan instead")
        created = await store.insert_subscription(connection, subscription)
        await apply_limits(connection, subscription.organization_id, plan)
        return created


async def subscribe(
    pool: asyncpg.Pool, effects: Effects | Mailbox, request: SubscribeRequest, now: datetime | None = None
) -> Subscription:
    """Subscribe an organization to a plan (checked whole before anything is written), set the
    plan's limits and access, and grant its first period."""
    now = now or datetime.now(UTC)
    checks.check_seats(request.seats)
    checks.check_timezone(request.timezone)
    checks.check_anchor(request.anchor or now, now)
    async with pool.acquire() as connection:
        catalog = await load_catalog(connection)
        plan = checks.require_plan(catalog, request.plan_key, request.anchor or now)
        checks.check_seats(request.seats, plan)
        checks.require_priced(plan, request.interval)
        made = new_subscription(request, plan, now)
        existing = await store.subscription_by_id(connection, made.id)
        if existing is not None:
            subscription = same_request(existing, request)
        else:
            try:
                subscription = same_request(await _create(connection, made, plan), request)
            except asyncpg.UniqueViolationError as error:
                # Another request won the race: this one's retry (same id), or another subscription.
                raced = await store.subscription_by_id(connection, made.id)
                if raced is None:
                    raise SubscriptionExists("the organization has a live subscription: change its plan") from error
                subscription = same_request(raced, request)
    await start(pool, effects, catalog, subscription, now)
    return subscription


async def start(
    pool: asyncpg.Pool, effects: Effects | Mailbox, catalog: Catalog, subscription: Subscription, now: datetime
) -> None:
    """A new subscription's effects: its plan's access, then its due periods (the first at once)."""
    plan = checks.require_plan(catalog, subscription.segments[0].plan_key, subscription.anchor)
    access = (period_key(subscription.id, subscription.anchor, "access"), plan_access(plan))
    await send(effects, subscription.organization_id, [access], now)
    await advance_subscription(pool, effects, catalog, subscription.id, now)


async def cancel(pool: asyncpg.Pool, organization_id: UUID, now: datetime | None = None) -> Subscription:
    """Cancel at the current billing period's end (the turnover ends it then). Cancelling a
    cancelled one answers it as it is."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        subscription = await checks.locked_live(connection, organization_id, archived_too=True)
        if subscription.cancel_at_period_end:
            return subscription
        ends_at = subscription.billing_calendar.period_at(now).end
        cancelled = replace(subscription, cancel_at_period_end=True, ends_at=ends_at)
        await store.update_subscription(connection, cancelled)
        return cancelled


async def resume(pool: asyncpg.Pool, organization_id: UUID) -> Subscription:
    """Undo a pending cancel (before its end). Resuming one not cancelled answers it as it is."""
    async with pool.acquire() as connection, connection.transaction():
        subscription = await checks.locked_live(connection, organization_id, archived_too=True)
        if not subscription.cancel_at_period_end:
            return subscription
        if subscription.status is SubscriptionStatus.CANCELED:  # pragma: no cover - locked_live refuses it
            raise SubscriptionInactive("the subscription has ended")
        resumed = replace(subscription, cancel_at_period_end=False, ends_at=None)
        await store.update_subscription(connection, resumed)
        return resumed
