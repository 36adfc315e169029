"""Paying an open invoice now (`payInvoice`): after a card update during dunning, or a Net-N invoice
paid by card. The payment's request key derives from the invoice and the client's key
(`invoice:<id>:pay:<key>`), so a retry pays once; success goes through `settle_intent` like every
payment, whose hook marks the invoice paid and lifts a suspension it caused at once."""

from __future__ import annotations

from uuid import UUID

from ledger.billing.invoice import Invoice, InvoiceStatus
from ledger.core.errors import InvalidCommand, NotFound, PaymentDeclined
from ledger.invoicing import store
from ledger.invoicing.collect import charge_request
from ledger.invoicing.settlement import manual_key
from ledger.payments.charges import charge
from ledger.payments.context import PaymentContext
from ledger.payments.store import PaymentStatus


async def pay_invoice(
    ctx: PaymentContext, organization_id: UUID, invoice_id: UUID, idempotency_key: str, payment_method_id: str | None
) -> Invoice:
    """Charge the invoice's amount due to the card given (default: the organization's default card);
    the invoice as it stands after. A paid invoice answers as it is; a declined card is
    PAYMENT_DECLINED with Stripe's code and leaves the invoice open."""
    invoice = await store.load_invoice(ctx.pool, invoice_id)
    if invoice is None or invoice.organization_id != organization_id:
        raise NotFound("invoice not found")
    if invoice.status is InvoiceStatus.PAID:
        return invoice
    if invoice.status is not InvoiceStatus.OPEN or invoice.amount_due <= 0:
        raise InvalidCommand(f"invoice {invoice.number} is {invoice.status.value}: nothing to pay")
    key = manual_key(invoice.id, idempotency_key)
    request = charge_request(invoice, key, payment_method_id=payment_method_id, off_session=False)
    payment = await charge(ctx, request)
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        raise PaymentDeclined(
            f"the card was declined: {payment.failure_message or payment.decline_code or 'no reason given'}",
            payment.decline_code or "card_declined",
        )
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        raise PaymentDeclined("the card needs authentication: pay with another card", "authentication_required")
    paid = await store.load_invoice(ctx.pool, invoice_id)
    assert paid is not None
    return paid
