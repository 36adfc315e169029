"""Plan changes: an upgrade applies at once (prorated by `ledger.billing.proration.prorate`, the
function the preview calls too); any other change, Archive included, waits for the billing period's
end as the subscription's `pending_plan_key`, which the turnover applies then. Choosing the current
plan again undoes a pending change.

An upgrade's commands (access, credits) are sent and their results awaited under the subscription's
row lock before the change, its charge and the subscription are recorded in that transaction: a
refused command records nothing, and a crash in between is healed by the retry under the same keys
(the ledger applies a key once). A change's id derives from (subscription, the request's
idempotency key): a retry of a recorded change finds its row and answers the same proration,
computed again from the row; the same key for another plan is IDEMPOTENCY_CONFLICT.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from ledger.billing.calendar import add_period
from ledger.billing.catalog import Catalog, Interval, Plan
from ledger.billing.keys import change_key
from ledger.billing.proration import PlanSwitch, Proration, prorate
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.billing.turnover import plan_access
from ledger.core.commands import Payload
from ledger.core.errors import IdempotencyConflict, InvalidCommand
from ledger.store.catalog_versions import load_catalog
from ledger.stream.mailbox import Mailbox
from ledger.subscriptions import checks, store, turnover
from ledger.subscriptions.effects import Effects
from ledger.subscriptions.plan_effects import apply_limits, credit_change, send


@dataclass(frozen=True, slots=True)
class PlanChangeResult:
    subscription: Subscription  # as it is after the change
    proration: Proration
    change_id: UUID | None  # None: a pending change undone, nothing recorded


def plan_proration(
    subscription: Subscription, catalog: Catalog, plan_key: str, interval: Interval | None, at: datetime
) -> Proration:
    """What moving to `plan_key` at `at` does: the one computation behind the preview and the change."""
    if interval is not None and interval is not subscription.interval:
        raise InvalidCommand(
            f"a plan change keeps the subscription's {subscription.interval.value} interval; "
            "to change the interval, cancel and subscribe again"
        )
    before = checks.require_plan(catalog, subscription.segment_at(at).plan_key, at)
    after = checks.require_plan(catalog, plan_key, at)
    if after.key == before.key and subscription.pending_plan_key is None:
        raise InvalidCommand(f"the subscription is on {before.name} already")
    checks.require_priced(after, subscription.interval)
    checks.check_seats(subscription.seats, after)
    calendars = (subscription.billing_calendar, subscription.credit_calendar)
    return prorate(before, subscription.interval, subscription.seats, calendars, _switch(subscription, after, at), at)


def _switch(subscription: Subscription, after: Plan, at: datetime) -> PlanSwitch:
    """The switch to `after` at `at`: out of a trial (its price never paid), maybe over by then."""
    trialing = subscription.status is SubscriptionStatus.TRIALING
    ends = subscription.trial_ends_at
    return PlanSwitch(after, from_trial=trialing, trial_over=trialing and ends is not None and ends <= at)


def replayed(subscription: Subscription, catalog: Catalog, change: store.PlanChange) -> Proration:
    before = checks.require_plan(catalog, change.plan_before, change.at)
    after = checks.require_plan(catalog, change.plan_after, change.at)
    calendars = (subscription.billing_calendar, subscription.credit_calendar)
    # Whether it left a trial is not on the row (the subscription is active since): the row's figures tell.
    switches = (PlanSwitch(after), PlanSwitch(after, from_trial=True), PlanSwitch(after, True, trial_over=True))
    prorations = [prorate(before, subscription.interval, change.seats, calendars, w, change.at) for w in switches]
    matching = [p for p in prorations if (p.amount, p.credits) == (change.amount, change.credits)]
    return (matching or prorations)[0]


def changed_subscription(subscription: Subscription, proration: Proration) -> Subscription:
    """The subscription after the change: on the new plan now (an upgrade; out of a trial or out of
    Archive it is active), or with the change pending until the period's end."""
    after = proration.plan_after
    if after.key == subscription.plan_key:  # staying: undo what was pending
        return replace(subscription, pending_plan_key=None,
                       media_purge_at=None if after.generation else subscription.media_purge_at)  # fmt: skip
    if proration.immediate:
        return replace(subscription, plan_key=after.key, pending_plan_key=None, status=SubscriptionStatus.ACTIVE,
                       trial_ends_at=None, media_purge_at=None)  # fmt: skip
    media_purge_at = subscription.media_purge_at
    if not after.generation and after.media_purge_days is not None:
        media_purge_at = add_period(proration.effective_at, days=after.media_purge_days, timezone=subscription.timezone)
    return replace(subscription, pending_plan_key=after.key, media_purge_at=media_purge_at)


async def _record(
    connection: asyncpg.Connection, subscription: Subscription, proration: Proration, change_id: UUID
) -> PlanChangeResult:
    s, p = subscription, proration
    changed = changed_subscription(s, p)
    await store.update_subscription(connection, changed)
    if p.plan_after.key == s.plan_key:
        return PlanChangeResult(changed, p, None)
    await store.insert_plan_change(connection, store.PlanChange(
        id=change_id, subscription_id=s.id, organization_id=s.organization_id, at=p.at, plan_before=p.plan_before.key,
        plan_after=p.plan_after.key, seats=p.seats_before, immediate=p.immediate, effective_at=p.effective_at,
        credits=p.credits, amount=p.amount, currency=p.currency,
    ))  # fmt: skip
    if p.immediate:
        await store.add_segment(connection, s.organization_id, s.id, PlanSegment(p.at, p.plan_after.key, s.seats))
        await apply_limits(connection, s.organization_id, p.plan_after)
        await _charge(connection, s, p, change_key(s.id, change_id, "upgrade"))
    return PlanChangeResult(changed, p, change_id)


async def _charge(connection: asyncpg.Connection, s: Subscription, p: Proration, key: str) -> None:
    for line in p.lines:
        if line.amount != 0:
            await store.insert_charge(connection, store.BillingCharge(
                id=checks.charge_id_for(key), organization_id=s.organization_id, subscription_id=s.id,
                idempotency_key=key, kind=line.kind, description=line.description, quantity=line.quantity,
                unit_price=line.unit_price, amount=line.amount, currency=p.currency,
                period_start=p.billing_period.start, period_end=p.billing_period.end,
            ))  # fmt: skip


async def preview_plan_change(
    pool: asyncpg.Pool, organization_id: UUID, plan_key: str, interval: Interval | None = None,
    at: datetime | None = None, effects: Effects | Mailbox | None = None,
) -> Proration:  # fmt: skip
    """What `change_plan` would do now, writing nothing of the change (with `effects`, the turnover
    due by `at` is applied first, as the change would)."""
    now = datetime.now(UTC)
    at = at or now
    async with pool.acquire() as connection:
        catalog = await load_catalog(connection)
        if effects is not None:
            await turnover.catch_up(pool, effects, catalog, organization_id, at)
        found = await store.live_subscription_of(connection, organization_id)
        subscription = checks.require_live(found, archived_too=True)
        checks.check_change_time(subscription, at, now)
        await turnover.require_caught_up(connection, catalog, subscription, at)
        return plan_proration(subscription, catalog, plan_key, interval, at)


async def change_plan(
    pool: asyncpg.Pool, effects: Effects | Mailbox, organization_id: UUID, plan_key: str, idempotency_key: str, *,
    interval: Interval | None = None, at: datetime | None = None, now: datetime | None = None,
) -> PlanChangeResult:  # fmt: skip
    """Move the subscription to `plan_key`: an upgrade at `at` (now unless given), anything else at
    the billing period's end."""
    now = now or datetime.now(UTC)
    at = at or now
    async with pool.acquire() as connection:
        catalog = await load_catalog(connection)
        await turnover.catch_up(pool, effects, catalog, organization_id, at)
        async with connection.transaction():
            subscription = await checks.locked_live(connection, organization_id, archived_too=True)
            change_id = checks.change_id_for(subscription.id, "plan", idempotency_key)
            existing = await store.plan_change_by_id(connection, change_id)
            if existing is not None:
                if existing.plan_after != plan_key:
                    raise IdempotencyConflict("idempotencyKey was used for another plan change")
                return PlanChangeResult(subscription, replayed(subscription, catalog, existing), change_id)
            checks.check_change_time(subscription, at, now)
            await turnover.require_caught_up(connection, catalog, subscription, at)
            proration = plan_proration(subscription, catalog, plan_key, interval, at)
            # The commands go first, under the lock: a refused one records nothing, and a crash
            # before the record is healed by the retry under the same keys (applied once).
            await _send(effects, subscription, proration, change_id, now)
            return await _record(connection, subscription, proration, change_id)


async def _send(
    effects: Effects | Mailbox, subscription: Subscription, p: Proration, change_id: UUID, now: datetime
) -> None:
    """An upgrade's access and credits, sent and awaited (a pending change or an undo sends nothing)."""
    s = subscription
    if p.plan_after.key == s.plan_key or not p.immediate:
        return
    after: Plan = p.plan_after
    sent: list[tuple[str, Payload]] = [(change_key(s.id, change_id, "access"), plan_access(after))]
    payload = credit_change(after, p.credits, p.credit_period, f"upgrade to {after.key}")
    if payload is not None:
        sent.append((change_key(s.id, change_id, "upgrade"), payload))
    await send(effects, s.organization_id, sent, now)
