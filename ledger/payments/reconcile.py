"""The reconciliation: the third road to each payment's outcome, for what the answer and the
webhook missed (localstripe sends each webhook once, with no retries; a process may die between
Stripe's answer and our record). Safe with several workers at once: every step is keyed.

1. Poll Stripe's `/v1/events` from a stored cursor (`stripe_cursors`, re-reading a small overlap
   before it, since events of the same second may be listed apart), storing each event once
   (`received_via` poll) exactly as the webhook does.
2. Apply every stored event not applied yet (the webhook's too, if applying them failed).
3. Re-check the payments left unsettled for longer than `payments_unsettled_after_s`: one with an
   intent is settled from the intent Stripe has now; one still `creating` with no intent crashed
   before Stripe answered, and its intent is created again under the same idempotency key
   (`payment:<payment id>`: real Stripe answers a repeat within 24 hours with the first intent, and
   the intent's metadata names the payment, so a webhook of a first intent still finds it); past
   `payments_creating_retry_max_s` no retry is safe, and the payment is marked failed. A succeeded
   pack or recharge whose grant is not recorded is settled again (the ledger grants it once). A
   payment unsettled for longer than `payments_recheck_window_s` (a 3-D Secure check abandoned) is
   no longer re-read every run: its events, if Stripe ever sends any, still settle it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg

from ledger import constants
from ledger.core.errors import LedgerError
from ledger.payments.charges import create_intent
from ledger.payments.context import PaymentContext
from ledger.payments.customers import customer_of
from ledger.payments.events import EventView
from ledger.payments.gateway import IntentView
from ledger.payments.inbox import apply_pending, receive
from ledger.payments.settle import settle_intent
from ledger.payments.store import (
    Payment,
    PaymentStatus,
    Purpose,
    record_outcome,
    ungranted_payments,
    unsettled_payments,
)

log = logging.getLogger(__name__)

CURSOR = "events"
# While a backlog larger than one run's cap is drained: the listing's upper bound (`created`, the
# newest event when the backlog began: the cursor once drained) and the last event id read.
BACKLOG = "events:backlog"
_CURSORS = "SELECT name, created, after_id FROM stripe_cursors WHERE name = ANY($1::text[])"
_ADVANCE = """
INSERT INTO stripe_cursors (name, created, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET created = greatest(stripe_cursors.created, excluded.created), updated_at = $3
"""
_BACKLOG = """
INSERT INTO stripe_cursors (name, created, after_id, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET created = excluded.created, after_id = excluded.after_id, updated_at = $4
"""
_DRAINED = "DELETE FROM stripe_cursors WHERE name = $1"


async def poll_events(ctx: PaymentContext) -> int:
    """Store the events Stripe listed since the cursor (less the overlap); how many were new. Stripe
    lists newest first, so a run stopped by its cap has not read the oldest: the cursor then stays,
    and the next runs page on from where this one stopped. One event we cannot store is skipped."""
    found = {row["name"]: row for row in await ctx.pool.fetch(_CURSORS, [CURSOR, BACKLOG])}
    cursor: int | None = found[CURSOR]["created"] if CURSOR in found else None
    since = (
        cursor - constants.stripe_events_overlap_s
        if cursor is not None
        else int((ctx.now - timedelta(seconds=constants.stripe_events_first_lookback_s)).timestamp())
    )
    backlog = found.get(BACKLOG)
    upper: int | None = backlog["created"] if backlog is not None else None
    last: str | None = backlog["after_id"] if backlog is not None else None
    stored = seen = 0
    newest = max(cursor or since, upper or 0)
    while True:
        page = await ctx.gateway.list_events(since, constants.stripe_page_size_max, last, upper)
        for event in page.events:
            stored += await _store(ctx, event)
            newest = max(newest, int(event.created.timestamp()))
        seen += constants.stripe_page_size_max
        last = page.last_id or last
        if not page.has_more or seen >= constants.stripe_events_per_run_max:
            break
    if page.has_more:  # capped: the next run pages on below `last`, up to the same bound
        await ctx.pool.execute(_BACKLOG, BACKLOG, upper if upper is not None else newest, last, ctx.now)
        log.warning("stripe events: more than %d waiting; the next run reads on after %s", seen, last)
    else:
        await ctx.pool.execute(_ADVANCE, CURSOR, newest, ctx.now)
        await ctx.pool.execute(_DRAINED, BACKLOG)
    return stored


async def _store(ctx: PaymentContext, event: EventView) -> bool:
    try:
        return await receive(ctx.pool, event, "poll", ctx.now)
    except asyncpg.DataError as error:  # nothing the inbox can store: skipped, never a stuck poll
        log.error("stripe event %s (%s) cannot be stored, skipped: %r", event.id, event.type, error)
        return False


async def recheck_payments(ctx: PaymentContext) -> int:
    """Settle the payments whose outcome is overdue from what Stripe says now; how many. One that
    cannot be settled now (Stripe unreachable) is logged and left for the next run."""
    before = ctx.now - timedelta(seconds=constants.payments_unsettled_after_s)
    after = ctx.now - timedelta(seconds=constants.payments_recheck_window_s)
    limit = constants.payments_rechecked_per_run_max
    unsettled = await unsettled_payments(ctx.pool, before, after, limit)
    checked = 0
    for payment in [
        *unsettled,
        *await ungranted_payments(ctx.pool, before, limit, constants.payment_grant_attempts_max),
    ]:
        try:
            await _recheck(ctx, payment)
        except LedgerError as error:
            log.warning("payment %s not re-checked now: %s %s", payment.id, error.code, error.message)
            continue
        checked += 1
    return checked


async def _recheck(ctx: PaymentContext, payment: Payment) -> None:
    if payment.payment_intent_id is not None:
        intent = await ctx.gateway.retrieve_payment_intent(payment.payment_intent_id)
        await settle_intent(ctx, intent, "poll", payment_id=payment.id)
    elif payment.status is PaymentStatus.CREATING:
        await _retry_creating(ctx, payment, ctx.now)


async def _retry_creating(ctx: PaymentContext, payment: Payment, now: datetime) -> None:
    adopted = await _intent_made(ctx, payment)
    if adopted is not None:  # Stripe made it, the answer was lost: adopted, never made twice
        log.warning("payment %s: adopting intent %s Stripe made before the answer was lost", payment.id, adopted.id)
        await settle_intent(ctx, adopted, "poll", payment_id=payment.id)
        return
    if now - payment.created_at > timedelta(seconds=constants.payments_creating_retry_max_s):
        log.error("payment %s never reached Stripe and is too old to retry: marked failed", payment.id)
        await record_outcome(ctx.pool, payment.id, None, PaymentStatus.FAILED, "not_created",
                             "the charge never reached Stripe", now)  # fmt: skip
        return
    log.warning("payment %s has no intent after %s: creating it again (same key)", payment.id, now - payment.created_at)
    intent = await create_intent(ctx, payment.id, payment.purpose is not Purpose.PACK, "")
    if intent is not None:
        await settle_intent(ctx, intent, "poll", payment_id=payment.id)


async def _intent_made(ctx: PaymentContext, payment: Payment) -> IntentView | None:
    """The intent Stripe made for `payment` (its metadata names it), if any: the idempotency key
    alone does not guard a re-creation (not every server honours it, and not after 24 hours)."""
    customer = await customer_of(ctx.pool, payment.organization_id)
    if customer is None:
        return None
    since = int(payment.created_at.timestamp()) - constants.stripe_events_overlap_s
    for intent in await ctx.gateway.intents_of(customer, since):
        if intent.metadata.get("payment_id") == str(payment.id):
            return intent
    return None


async def reconcile(ctx: PaymentContext) -> int:
    """One run: poll, apply, re-check; how many events and payments it handled. A step Stripe cannot
    answer now is logged and the next steps still run."""
    counts = []
    for step in (poll_events, _apply, recheck_payments):
        try:
            counts.append(await step(ctx))
        except LedgerError as error:
            log.warning("stripe reconciliation: %s not done now: %s %s", step.__name__, error.code, error.message)
            counts.append(0)
    stored, applied, checked = counts
    if stored or applied or checked:
        log.info(
            "stripe reconciliation: %d event(s) new, %d applied, %d payment(s) re-checked", stored, applied, checked
        )
    return stored + applied + checked


async def _apply(ctx: PaymentContext) -> int:
    return await apply_pending(ctx, constants.stripe_events_per_run_max)
