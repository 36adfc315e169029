"""Stripe's events in: the inbox (`stripe_events`, each event id once, whether the webhook or the
reconciliation poll brought it) and applying them, idempotently and in any order.

An event is stored first and applied after, so a 2xx answers Stripe quickly and nothing is lost if
applying fails (the poll applies what is left). Applying claims the event for a while (two appliers
never apply one event at once; the claim is committed, so no connection is held meanwhile), then
marks it applied, or records the error and leaves it for the next try. What an event does:

- `payment_intent.*`: the intent is read again from Stripe (events arrive in any order, so the
  event's copy may be older than what Stripe knows) and settled (`settle_intent`);
- `charge.refunded`: `refund_outcomes.charge_refunded`;
- `charge.dispute.created`: a PAYMENT_FAILED billing alert for the payment's organization, keyed
  `dispute:<dispute id>`;
- any other type: nothing (stored and marked applied).
"""

from __future__ import annotations

import logging
from datetime import datetime

from ledger import constants
from ledger.core.billing_commands import RaiseBillingAlert
from ledger.core.commands import AlertKind
from ledger.core.errors import NotFound
from ledger.core.money import MicroCredits
from ledger.core.validation import check_text
from ledger.payments.context import PaymentContext
from ledger.payments.events import EventView, event_view
from ledger.payments.gateway import IntentView, intent_view
from ledger.payments.refund_outcomes import charge_refunded
from ledger.payments.settle import settle_intent
from ledger.payments.store import payment_by_intent
from ledger.store.pool import Connection
from ledger.subscriptions.effects import LedgerEffect

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO stripe_events (id, type, created, payload, received_via, received_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO NOTHING
"""


async def receive(connection: Connection, event: EventView, via: str, at: datetime) -> bool:
    """Store the event once; False when its id was stored already (a replay, or the other road)."""
    status = await connection.execute(_INSERT, event.id, event.type, event.created, dict(event.payload), via, at)
    return bool(status == "INSERT 0 1")


# An applier claims the event (a lease on the wall clock: a crashed applier's lapses) and commits,
# so no transaction or connection is held while Stripe and the ledger are asked.
_CLAIM = """
UPDATE stripe_events SET claimed_until = clock_timestamp() + make_interval(secs => $2)
WHERE id = $1 AND applied_at IS NULL AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
RETURNING payload, received_via
"""
_APPLIED = "UPDATE stripe_events SET applied_at = $2, error = NULL, claimed_until = NULL WHERE id = $1"
_FAILED = "UPDATE stripe_events SET error = $2, attempts = attempts + 1, claimed_until = NULL WHERE id = $1"
# Unclaimed and not applied, the fewest failed attempts first (one that keeps failing starves no other).
_PENDING = """
SELECT id FROM stripe_events
WHERE applied_at IS NULL AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
ORDER BY attempts, received_at, id LIMIT $1
"""


async def apply_stored(ctx: PaymentContext, event_id: str) -> bool:
    """Apply a stored event unless it was applied already (or is being applied); True if applied now."""
    row = await ctx.pool.fetchrow(_CLAIM, event_id, constants.stripe_event_claim_s)
    if row is None:
        return False
    try:
        event = event_view(row["payload"])
        await apply_event(ctx, event, row["received_via"])
    except Exception as error:  # kept for the next try, whatever it was
        log.warning("stripe event %s not applied: %r", event_id, error)
        await ctx.pool.execute(_FAILED, event_id, repr(error)[:500])
        return False
    await ctx.pool.execute(_APPLIED, event_id, ctx.now)
    return True


async def apply_pending(ctx: PaymentContext, limit: int) -> int:
    """Apply the stored events not applied yet, oldest first; how many were applied."""
    applied = 0
    for row in await ctx.pool.fetch(_PENDING, limit):
        applied += await apply_stored(ctx, row["id"])
    return applied


async def apply_event(ctx: PaymentContext, event: EventView, via: str) -> None:
    kind = event.type
    if kind.startswith("payment_intent."):
        await settle_intent(ctx, await _latest_intent(ctx, event), via)
    elif kind == "charge.refunded":
        await charge_refunded(ctx, event.object)
    elif kind == "charge.dispute.created":
        await _dispute_opened(ctx, event)
    else:
        log.debug("stripe event %s (%s): nothing to do", event.id, kind)


async def _latest_intent(ctx: PaymentContext, event: EventView) -> IntentView:
    try:
        return await ctx.gateway.retrieve_payment_intent(str(event.object["id"]))
    except NotFound:
        return intent_view(event.object)  # Stripe no longer has it: the event's copy is all there is


async def _dispute_opened(ctx: PaymentContext, event: EventView) -> None:
    dispute = event.object
    intent = dispute.get("payment_intent")
    payment = await payment_by_intent(ctx.pool, str(intent)) if intent else None
    if payment is None:
        log.warning("dispute %s on intent %s: none of our payments", dispute.get("id"), intent)
        return
    reason = str(dispute.get("reason") or "unspecified")
    name = f"dispute opened on payment {payment.id}: {reason}"[:200]
    check_text(name, "name")
    alert = RaiseBillingAlert(
        kind=AlertKind.PAYMENT_FAILED, name=name, value=MicroCredits(int(dispute.get("amount") or 0)),
        threshold=MicroCredits(0),
    )  # fmt: skip
    key = f"dispute:{dispute['id']}"
    await ctx.effects.apply(payment.organization_id, [LedgerEffect(key, alert, ctx.now)])
    log.warning("dispute %s opened on payment %s (%s)", dispute["id"], payment.id, reason)
