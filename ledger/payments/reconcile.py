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

from ledger import constants
from ledger.core.errors import LedgerError
from ledger.payments.charges import create_intent
from ledger.payments.context import PaymentContext
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
_CURSOR = "SELECT created FROM stripe_cursors WHERE name = $1"
_ADVANCE = """
INSERT INTO stripe_cursors (name, created, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET created = greatest(stripe_cursors.created, excluded.created), updated_at = $3
"""


async def poll_events(ctx: PaymentContext) -> int:
    """Store the events Stripe listed since the cursor (less the overlap); how many were new."""
    cursor: int | None = await ctx.pool.fetchval(_CURSOR, CURSOR)
    since = (
        cursor - constants.stripe_events_overlap_s
        if cursor is not None
        else int((ctx.now - timedelta(seconds=constants.stripe_events_first_lookback_s)).timestamp())
    )
    stored = seen = 0
    newest = cursor or since
    last: str | None = None
    while seen < constants.stripe_events_per_run_max:
        page = await ctx.gateway.list_events(since, constants.stripe_page_size_max, last)
        for event in page:
            stored += await receive(ctx.pool, event, "poll", ctx.now)
            newest = max(newest, int(event.created.timestamp()))
        seen += len(page)
        if len(page) < constants.stripe_page_size_max:
            break
        last = page[-1].id
    await ctx.pool.execute(_ADVANCE, CURSOR, newest, ctx.now)
    return stored


async def recheck_payments(ctx: PaymentContext) -> int:
    """Settle the payments whose outcome is overdue from what Stripe says now; how many. One that
    cannot be settled now (Stripe unreachable) is logged and left for the next run."""
    before = ctx.now - timedelta(seconds=constants.payments_unsettled_after_s)
    after = ctx.now - timedelta(seconds=constants.payments_recheck_window_s)
    limit = constants.payments_rechecked_per_run_max
    unsettled = await unsettled_payments(ctx.pool, before, after, limit)
    checked = 0
    for payment in [*unsettled, *await ungranted_payments(ctx.pool, before, limit)]:
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
    if now - payment.created_at > timedelta(seconds=constants.payments_creating_retry_max_s):
        log.error("payment %s never reached Stripe and is too old to retry: marked failed", payment.id)
        await record_outcome(ctx.pool, payment.id, None, PaymentStatus.FAILED, "not_created",
                             "the charge never reached Stripe", now)  # fmt: skip
        return
    log.warning("payment %s has no intent after %s: creating it again (same key)", payment.id, now - payment.created_at)
    intent = await create_intent(ctx, payment.id, payment.purpose is not Purpose.PACK, "")
    if intent is not None:
        await settle_intent(ctx, intent, "poll", payment_id=payment.id)


async def reconcile(ctx: PaymentContext) -> int:
    """One run: poll, apply, re-check; how many events and payments it handled."""
    stored = await poll_events(ctx)
    applied = await apply_pending(ctx, constants.stripe_events_per_run_max)
    checked = await recheck_payments(ctx)
    if stored or applied or checked:
        log.info(
            "stripe reconciliation: %d event(s) new, %d applied, %d payment(s) re-checked", stored, applied, checked
        )
    return stored + applied + checked
