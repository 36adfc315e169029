"""What a recharge's outcome does: the `recharges` row moves on, and a failure raises one
AUTO_RECHARGE_FAILED billing alert on the organization's feed.

`recharge_failed` is the hook `ledger.payments.settle.settle_intent` calls for a failed recharge
payment on every road (the answer, the webhook, the poll), so everything here is idempotent: the
row only leaves `started` once, and the alert's command is keyed by the recharge (`recharge:<alert
event>:failed`), so the actor journals it once however often it is sent. The alert is sent before
the row is marked, so a send that fails leaves the recharge started and the sweep finishes it.
A failed recharge is not retried: its rule stays triggered until a payment lifts the balance.

(No import of `ledger.payments.charges` or `ledger.payments.settle` here: they import this.)
"""

from __future__ import annotations

import logging
from uuid import UUID

from ledger.billing.auto_recharge import RechargeStatus
from ledger.billing.money_format import from_minor
from ledger.core.billing_commands import RaiseBillingAlert
from ledger.core.commands import AlertKind
from ledger.core.entries import Status
from ledger.core.money import MicroCredits
from ledger.payments.context import PaymentContext
from ledger.payments.recharge_store import Recharge, recharge_of, settle_recharge
from ledger.payments.store import Payment, PaymentStatus, Purpose
from ledger.subscriptions.effects import LedgerEffect

log = logging.getLogger(__name__)

_PREFIX = "recharge:"


def alert_event_of(payment: Payment) -> UUID | None:
    """The crossing a recharge payment was made for (its request key is `recharge:<alert event>`)."""
    if payment.purpose is not Purpose.RECHARGE or not payment.request_key.startswith(_PREFIX):
        return None
    try:
        return UUID(payment.request_key.removeprefix(_PREFIX))
    except ValueError:
        return None


async def _alert(ctx: PaymentContext, recharge: Recharge, what: str, name: str, value: int, threshold: int) -> None:
    alert = RaiseBillingAlert(AlertKind.AUTO_RECHARGE_FAILED, name, MicroCredits(value), MicroCredits(threshold))
    key = f"recharge:{recharge.alert_event_id}:{what}"
    [reply] = await ctx.effects.apply(recharge.organization_id, [LedgerEffect(key, alert, ctx.now)])
    if reply.result.status is Status.REJECTED:
        log.error("alert %s refused: %s %s", key, reply.result.code, reply.result.message)


async def over_cap(ctx: PaymentContext, recharge: Recharge, charged: int, cap: int) -> None:
    """The month's cap would have been passed: the alert's value is what was charged, its
    threshold the cap (minor units)."""
    await _alert(ctx, recharge, "over_cap", "monthly cap reached", charged, cap)


async def failed_recharge(ctx: PaymentContext, recharge: Recharge, payment: Payment | None, detail: str) -> Recharge:
    """Mark the recharge failed (once) with its alert; the row as it now is."""
    await _alert(ctx, recharge, "failed", f"auto-recharge failed: {detail}"[:200], recharge.amount, 0)
    await settle_recharge(ctx.pool, recharge.alert_event_id, RechargeStatus.FAILED,
                          None if payment is None else payment.id, detail)  # fmt: skip
    return await _current(ctx, recharge)


async def recharge_failed(ctx: PaymentContext, payment: Payment) -> None:
    """The settlement's hook: a recharge's payment failed (declined, or canceled)."""
    event = alert_event_of(payment)
    recharge = None if event is None else await recharge_of(ctx.pool, event)
    if recharge is None:
        log.warning("failed recharge payment %s names no recharge (%s)", payment.id, payment.request_key)
        return
    if recharge.status is not RechargeStatus.STARTED:
        return  # settled already: this is a replay
    await failed_recharge(ctx, recharge, payment, _why(payment))


async def recharge_answered(ctx: PaymentContext, recharge: Recharge, payment: Payment) -> Recharge:
    """Record what the charge answered: succeeded (its grant made by the settlement), failed, or
    still on its way (left started for the sweep)."""
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            await settle_recharge(ctx.pool, recharge.alert_event_id, RechargeStatus.SUCCEEDED, payment.id, "")
        case PaymentStatus.FAILED | PaymentStatus.CANCELED:
            await recharge_failed(ctx, payment)
        case PaymentStatus.REQUIRES_ACTION:
            # Off-session nobody can authenticate: a recharge that needs the cardholder has failed.
            await failed_recharge(ctx, recharge, payment, "the card needs the cardholder's authentication")
        case _:
            log.info("recharge %s: payment %s is %s", recharge.alert_event_id, payment.id, payment.status.value)
    return await _current(ctx, recharge)


def _why(payment: Payment) -> str:
    amount = f"{from_minor(payment.amount, payment.currency)} {payment.currency}"
    reason = payment.decline_code or payment.failure_message or payment.status.value
    return f"{amount} declined ({reason})"


async def _current(ctx: PaymentContext, recharge: Recharge) -> Recharge:
    found = await recharge_of(ctx.pool, recharge.alert_event_id)
    return recharge if found is None else found
