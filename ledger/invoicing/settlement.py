"""What an invoice's payment outcome does to the invoice and its dunning. `settle_intent` calls these
on every road (the charge's answer, the webhook, the poll), so each is idempotent: its row changes
happen once, and its ledger effects go under keys derived from the invoice, which the ledger applies
once however often they are sent again.

- `invoice_paid`: the invoice is paid, its dunning resolved; an organization the invoice had
  suspended is restored at once (`SetSuspension(False)`, key `dunning:<invoice>:restore`) unless
  another unpaid invoice suspended it too, and the failed-payment alert resolved (key
  `invoice:<invoice>:paid`; also for a Net-N invoice whose overdue alert was raised, by
  `ledger.invoicing.overdue`). A second payment of a paid invoice is recorded as an overpayment.
- `invoice_payment_failed`: an automatic attempt n (request key `invoice:<invoice>:<n>`) opens the
  dunning row at the first failure or raises its attempts; every failure raises a PAYMENT_FAILED
  alert (key `invoice:<invoice>:failed:<n>`). A payment the customer started (`payInvoice`) that
  fails only raises its alert: the schedule stays the renewal's.

The import-cycle rule: this module must not import `ledger.payments.charges` or `.settle`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.invoice import Invoice, InvoiceStatus
from ledger.core.commands import AlertKind, Payload, RaiseBillingAlert, SetSuspension
from ledger.core.entries import Status
from ledger.core.money import MicroCredits
from ledger.invoicing import dunning_store, payment_guard, store
from ledger.payments.context import PaymentContext
from ledger.payments.store import Payment
from ledger.subscriptions.effects import Effects, LedgerEffect

log = logging.getLogger(__name__)


def attempt_key(invoice_id: UUID, attempt: int) -> str:
    """The payment request key of automatic attempt `attempt` (1: at issue; 2-4: dunning's retries)."""
    return f"invoice:{invoice_id}:{attempt}"


def manual_key(invoice_id: UUID, idempotency_key: str) -> str:
    """The payment request key of a payment the customer asked for (`payInvoice`)."""
    return f"invoice:{invoice_id}:pay:{idempotency_key}"


def attempt_of(request_key: str) -> int | None:
    """The automatic attempt a payment's request key names; None for a customer's payment."""
    parts = request_key.split(":")
    if len(parts) == 3 and parts[0] == "invoice" and parts[2].isdigit():
        return int(parts[2])
    return None


async def send(ctx: PaymentContext, organization_id: UUID, effects: Sequence[tuple[str, Payload]]) -> None:
    """Send ledger effects (in order) and wait for them; a refusal is logged, never retried here:
    the same key would get the same answer."""
    await send_effects(ctx.effects, ctx.now, organization_id, effects)


async def send_effects(
    ledger: Effects, now: datetime, organization_id: UUID, effects: Sequence[tuple[str, Payload]]
) -> None:
    """`send` without a payment context (what needs no Stripe, e.g. an overdue Net-N invoice)."""
    sent = [LedgerEffect(key, payload, now) for key, payload in effects]
    for effect, reply in zip(sent, await ledger.apply(organization_id, sent), strict=True):
        if reply.result.status is not Status.ACCEPTED:
            log.error("the ledger refused %s: %s %s", effect.idempotency_key, reply.result.code, reply.result.message)


async def invoice_paid(ctx: PaymentContext, payment: Payment) -> None:
    """The payment paid its invoice: mark it paid and end its dunning, under the dunning row's lock
    (so a suspension being sent finishes first). A suspension it caused is lifted unless another
    unpaid invoice of the organization suspended it too, decided and sent under the organization's
    lock (which `ledger.invoicing.dunning` takes to suspend). A payment of an invoice another one
    paid already is an overpayment: recorded and logged for an operator, the invoice unchanged."""
    if payment.invoice_id is None:
        return
    async with ctx.pool.acquire() as connection, connection.transaction():
        found = await store.stored_invoice(connection, payment.invoice_id, for_update=True)
        if found is None:
            log.error("payment %s paid invoice %s, which does not exist", payment.id, payment.invoice_id)
            return
        invoice = found.invoice
        if invoice.status is InvoiceStatus.PAID and found.payment_id not in (None, payment.id):
            if await payment_guard.record_overpayment(connection, payment, invoice.id, ctx.now):
                log.error("invoice %s (organization %s) was paid again by payment %s (%s %d; paid by %s): "
                          "recorded in invoice_overpayments, refund it", invoice.number, invoice.organization_id,
                          payment.id, payment.currency, payment.amount, found.payment_id)  # fmt: skip
            return
        await dunning_store.lock(connection, invoice.id)
        overdue = await store.overdue_alerted(connection, invoice.id)
        await store.mark_paid(connection, invoice.id, payment.succeeded_at or ctx.now, payment.id)
        dunning = await dunning_store.dunning_of(connection, invoice.id)
        await dunning_store.resolve(connection, invoice.id, ctx.now)
        if dunning is not None and dunning.suspended_at is not None:
            await _restore(ctx, connection, invoice)
    effects: list[tuple[str, Payload]] = []
    name = f"invoice {invoice.number} paid"
    effects.append((f"invoice:{invoice.id}:paid", RaiseBillingAlert(AlertKind.PAYMENT_FAILED, name, resolved=True)))
    if dunning is not None or overdue:
        await send(ctx, invoice.organization_id, effects)
    log.info("invoice %s paid by payment %s", invoice.number, payment.id)


async def _restore(ctx: PaymentContext, connection: asyncpg.Connection, invoice: Invoice) -> None:
    """Lift the suspension `invoice` caused, unless another unpaid invoice keeps the organization
    suspended (then paying that one lifts it)."""
    await dunning_store.lock_organization(connection, invoice.organization_id)
    if await dunning_store.still_suspending(connection, invoice.organization_id, invoice.id):
        log.warning("invoice %s paid: organization %s stays suspended by another unpaid invoice", invoice.number,
                    invoice.organization_id)  # fmt: skip
        return
    name = f"invoice {invoice.number} paid: restored"
    await send(ctx, invoice.organization_id, [
        (f"dunning:{invoice.id}:restore", SetSuspension(False, invoice.number)),
        (f"dunning:{invoice.id}:restored", RaiseBillingAlert(AlertKind.SUSPENDED, name, resolved=True)),
    ])  # fmt: skip


async def invoice_payment_failed(ctx: PaymentContext, payment: Payment) -> None:
    """The payment of an invoice failed: dun it (an automatic attempt) and raise the alert."""
    if payment.invoice_id is None:
        return
    invoice = await store.load_invoice(ctx.pool, payment.invoice_id)
    if invoice is None or invoice.status is not InvoiceStatus.OPEN:
        return
    reason = payment.decline_code or payment.failure_message or payment.status.value
    # Dated by the attempt itself, whichever road (answer, webhook, poll) reports it first.
    await payment_failed(ctx, invoice, attempt_of(payment.request_key), reason, payment.id, payment.created_at)


async def payment_failed(
    ctx: PaymentContext,
    invoice: Invoice,
    attempt: int | None,
    reason: str,
    payment_id: UUID | None = None,
    at: datetime | None = None,
) -> None:
    """Attempt `attempt` (None: the customer's own payment), made at `at` (default now), to collect
    `invoice` failed for `reason` (a decline code, or no payment method): record it in the dunning
    row (the first failure dates the schedule) and raise the alert."""
    if attempt is not None:
        failed_at = at or ctx.now
        await dunning_store.record_failure(ctx.pool, invoice.id, invoice.organization_id, attempt, failed_at)
        key = f"invoice:{invoice.id}:failed:{attempt}"
        name = f"invoice {invoice.number}: payment failed ({reason}), attempt {attempt}"
    else:
        key = f"invoice:{invoice.id}:failed:{payment_id}"
        name = f"invoice {invoice.number}: payment failed ({reason})"
    alert = RaiseBillingAlert(AlertKind.PAYMENT_FAILED, name[:200], value=MicroCredits(invoice.amount_due))
    await send(ctx, invoice.organization_id, [(key, alert)])
    log.warning("invoice %s: payment failed (%s), attempt %s", invoice.number, reason, attempt)
