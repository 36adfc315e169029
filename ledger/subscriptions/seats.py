"""A seat quantity change mid-period: prorated to the second by `ledger.billing.proration.prorate`
(the preview calls the same function), its credits granted (or taken back) by a command keyed by
the change, then recorded as a seat change with its charge line.

Under the subscription's row lock the command is sent and its result awaited first, then the change
is recorded: a decrease is credited only for the share of credits the ledger could take back
(`revoked_share`), a refused command records nothing, and a crash in between is healed by the retry
under the same key (the ledger applies it once and answers the first result). The change's id
derives from (subscription, the request's idempotency key): a retry of a recorded change finds the
row and answers it; the same key for another quantity is IDEMPOTENCY_CONFLICT.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from ledger.billing.catalog import Catalog
from ledger.billing.keys import change_key
from ledger.billing.proration import Proration, SeatQuantity, prorate, revoked_share
from ledger.billing.subscription import PlanSegment, Subscription
from ledger.core.errors import IdempotencyConflict
from ledger.core.money import MicroCredits, parse_credits
from ledger.store.catalog_versions import load_catalog
from ledger.stream.mailbox import Mailbox
from ledger.subscriptions import checks, store, turnover
from ledger.subscriptions.effects import Effects
from ledger.subscriptions.plan_effects import credit_change, send


@dataclass(frozen=True, slots=True)
class SeatChangeResult:
    subscription: Subscription  # as it is after the change
    change: store.SeatChange
    proration: Proration


def seat_proration(subscription: Subscription, catalog: Catalog, seats: int, at: datetime) -> Proration:
    """What setting `seats` at `at` does: the one computation behind the preview and the change."""
    checks.check_seats(seats)
    plan = checks.require_plan(catalog, subscription.segment_at(at).plan_key, at)
    checks.check_seats(seats, plan)
    calendars = (subscription.billing_calendar, subscription.credit_calendar)
    return prorate(plan, subscription.interval, subscription.seats, calendars, SeatQuantity(seats), at)


def replayed(subscription: Subscription, catalog: Catalog, change: store.SeatChange) -> Proration:
    """A recorded change's proration, computed again from its row (the same pure function)."""
    plan = checks.require_plan(catalog, subscription.segment_at(change.at).plan_key, change.at)
    calendars = (subscription.billing_calendar, subscription.credit_calendar)
    full = prorate(plan, subscription.interval, change.seats_before, calendars, SeatQuantity(change.seats_after),
                   change.at)  # fmt: skip
    if change.credits < 0 and change.credits != full.credits:  # a decrease the ledger took back in part
        return revoked_share(full, MicroCredits(-change.credits), MicroCredits(-full.credits))
    return full


async def _record(
    connection: asyncpg.Connection, subscription: Subscription, proration: Proration, change_id: UUID
) -> SeatChangeResult:
    s, p = subscription, proration
    change = store.SeatChange(
        change_id, s.id, s.organization_id, p.at, p.seats_before, p.seats_after, p.credits, p.amount, p.currency
    )
    await store.insert_seat_change(connection, change)
    segment = PlanSegment(p.at, s.segment_at(p.at).plan_key, p.seats_after)
    await store.add_segment(connection, s.organization_id, s.id, segment)
    changed = replace(s, seats=p.seats_after)
    await store.update_subscription(connection, changed)
    key = change_key(s.id, change_id, "seats")
    for line in p.lines:
        if line.amount == 0:
            continue
        await store.insert_charge(connection, store.BillingCharge(
            id=checks.charge_id_for(key), organization_id=s.organization_id, subscription_id=s.id,
            idempotency_key=key, kind=line.kind, description=line.description, quantity=line.quantity,
            unit_price=line.unit_price, amount=line.amount, currency=p.currency,
            period_start=p.billing_period.start, period_end=p.billing_period.end,
        ))  # fmt: skip
    return SeatChangeResult(changed, change, p)


async def preview_seats(
    pool: asyncpg.Pool, organization_id: UUID, seats: int, at: datetime | None = None,
    effects: Effects | Mailbox | None = None,
) -> Proration:  # fmt: skip
    """What `set_seats` would do now, writing nothing of the change (with `effects`, the turnover
    due by `at` is applied first, as the change would)."""
    now = datetime.now(UTC)
    at = at or now
    async with pool.acquire() as connection:
        catalog = await load_catalog(connection)
        if effects is not None:
            await turnover.catch_up(pool, effects, catalog, organization_id, at)
        subscription = checks.require_live(await store.live_subscription_of(connection, organization_id))
        checks.check_change_time(subscription, at, now)
        await turnover.require_caught_up(connection, catalog, subscription, at)
        return seat_proration(subscription, catalog, seats, at)


async def set_seats(
    pool: asyncpg.Pool,
    effects: Effects | Mailbox,
    organization_id: UUID,
    seats: int,
    idempotency_key: str,
    *,
    at: datetime | None = None,
    now: datetime | None = None,
) -> SeatChangeResult:
    """Set the seat quantity at `at` (now unless given: within the current month, after the last
    change), charge and grant (or credit and take back) the prorated difference."""
    now = now or datetime.now(UTC)
    at = at or now
    checks.check_seats(seats)
    async with pool.acquire() as connection:
        catalog = await load_catalog(connection)
        await turnover.catch_up(pool, effects, catalog, organization_id, at)
        async with connection.transaction():
            subscription = await checks.locked_live(connection, organization_id)
            change_id = checks.change_id_for(subscription.id, "seats", idempotency_key)
            existing = await store.seat_change_by_id(connection, change_id)
            if existing is not None:
                if existing.seats_after != seats:
                    raise IdempotencyConflict("idempotencyKey was used for another seat quantity")
                return SeatChangeResult(subscription, existing, replayed(subscription, catalog, existing))
            checks.check_change_time(subscription, at, now)
            await turnover.require_caught_up(connection, catalog, subscription, at)
            proration = seat_proration(subscription, catalog, seats, at)
            # The command goes first, under the lock: a decrease is credited only for what the ledger
            # could take back, and a crash before the record is healed by the retry under the key.
            proration = await _send(effects, subscription, proration, change_id, now)
            return await _record(connection, subscription, proration, change_id)


async def _send(
    effects: Effects | Mailbox, subscription: Subscription, proration: Proration, change_id: UUID, now: datetime
) -> Proration:
    """Send the change's grant or revocation and wait for its result: the proration as applied
    (a decrease's credit scaled by the credits revoked / the credits requested)."""
    p = proration
    reason = f"seats {p.seats_before} -> {p.seats_after}"
    payload = credit_change(p.plan_after, p.credits, p.credit_period, reason)
    if payload is None:
        return p
    (reply,) = await send(
        effects, subscription.organization_id, [(change_key(subscription.id, change_id, "seats"), payload)], now
    )
    if p.credits >= 0:
        return p
    details = reply.result.details
    return revoked_share(p, parse_credits(details["revoked"]), parse_credits(details["requested"]))
