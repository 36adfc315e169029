"""Collecting an invoice by card: the organization's default card charged off-session (an automatic
attempt, at issue or by dunning) or the card the customer chose (`payInvoice`).

The charge's request key names the attempt (`invoice:<id>:<n>`, `invoice:<id>:pay:<key>`), so a job
run twice, two workers or a retry after a crash find the payment the first started and never charge
twice (`ledger.payments.charges.charge`); and whatever the key, an invoice with a payment under way
or done is not charged again (`ledger.invoicing.payment_guard`): that payment is taken as the
attempt's. Its outcome reaches the invoice through `settle_intent`'s
hooks (`ledger.invoicing.settlement`); no payment method at all counts as a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.invoice import Collection, Invoice, InvoiceStatus
from ledger.core.errors import PaymentMethodRequired
from ledger.invoicing import store
from ledger.invoicing.payment_guard import is_live_conflict, look
from ledger.invoicing.settlement import attempt_key, payment_failed
from ledger.payments.charges import ChargeRequest, Payment, Purpose, charge, resume
from ledger.payments.context import PaymentContext
from ledger.payments.store import PaymentStatus
from ledger.store.pool import Connection

log = logging.getLogger(__name__)


# Card invoices still open that no payment was ever started for (the job was down, no Stripe key
# was configured, a crash right after issue): the next run charges them.
_UNCOLLECTED = """
SELECT id FROM invoices i
WHERE status = 'open' AND collection = 'charge_automatically' AND issued_at <= $1
  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.org_id = i.org_id AND p.invoice_id = i.id)
  AND NOT EXISTS (SELECT 1 FROM dunning d WHERE d.invoice_id = i.id)
ORDER BY issued_at LIMIT $2
"""


def charge_request(
    invoice: Invoice, request_key: str, *, payment_method_id: str | None = None, off_session: bool = True
) -> ChargeRequest:
    return ChargeRequest(
        organization_id=invoice.organization_id,
        purpose=Purpose.INVOICE,
        request_key=request_key,
        amount=invoice.amount_due,
        currency=invoice.currency,
        off_session=off_session,
        payment_method_id=payment_method_id,
        invoice_id=invoice.id,
        description=f"Invoice {invoice.number}",
    )


async def _charge(ctx: PaymentContext, invoice: Invoice, attempt: int) -> Payment | None:
    """The attempt's payment, or the invoice's live one when it has one (the customer's own
    payment under way, or this attempt's after a crash): an invoice is charged once at a time."""
    for _ in range(3):
        found, live = await look(ctx.pool, invoice.id)
        if found is None or found.status is not InvoiceStatus.OPEN:
            return None
        if live is not None:
            return live if live.status is PaymentStatus.SUCCEEDED else await resume(ctx, live, off_session=True)
        try:
            return await charge(ctx, charge_request(found, attempt_key(invoice.id, attempt)))
        except asyncpg.UniqueViolationError as error:
            if not is_live_conflict(error):
                raise
    return None  # it keeps changing under us: the next run looks again


async def collect(ctx: PaymentContext, invoice: Invoice, attempt: int) -> Payment | None:
    """Automatic attempt `attempt` to charge an open card invoice's amount due (None: nothing to
    charge, or no payment method, which is recorded as the attempt's failure)."""
    if invoice.status is not InvoiceStatus.OPEN or invoice.collection is not Collection.CHARGE_AUTOMATICALLY:
        return None
    if invoice.amount_due <= 0:
        return None
    try:
        payment = await _charge(ctx, invoice, attempt)
    except PaymentMethodRequired as error:
        await payment_failed(ctx, invoice, attempt, "no payment method")
        log.warning("invoice %s: %s", invoice.number, error)
        return None
    if payment is not None and payment.status is PaymentStatus.REQUIRES_ACTION:
        # Off-session, nobody is there to authenticate: for dunning this attempt failed.
        await payment_failed(ctx, invoice, attempt, "authentication_required", payment.id, payment.created_at)
    if payment is not None:
        log.info("invoice %s: attempt %d is %s", invoice.number, attempt, payment.status.value)
    return payment


async def uncollected(connection: Connection, now: datetime, limit: int) -> list[UUID]:
    rows: Sequence[asyncpg.Record] = await connection.fetch(_UNCOLLECTED, now, limit)
    return [row["id"] for row in rows]


async def collect_uncollected(ctx: PaymentContext, limit: int) -> int:
    """Charge (attempt 1) each open card invoice no payment was started for; how many were tried."""
    tried = 0
    for invoice_id in await uncollected(ctx.pool, ctx.now, limit):
        invoice = await store.load_invoice(ctx.pool, invoice_id)
        if invoice is not None and await collect(ctx, invoice, 1) is not None:
            tried += 1
    return tried
