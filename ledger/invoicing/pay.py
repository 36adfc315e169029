"""Paying an open invoice now (`payInvoice`): after a card update during dunning, or a Net-N invoice
paid by card. The payment's request key derives from the invoice and the client's key
(`invoice:<id>:pay:<key>`), so a retry pays once; success goes through `settle_intent` like every
payment, whose hook marks the invoice paid and lifts a suspension it caused at once.

An invoice is charged once whatever the keys (`ledger.invoicing.payment_guard`): under the
invoice's row lock we look for its live or succeeded payment and answer (or resume) that one
instead of charging. The lock is let go before charging (`charge` takes pool connections of its
own); two requests that both found none are kept apart by the index, and the loser looks again.
A card that needs 3-D Secure answers the payment waiting in REQUIRES_ACTION with its client
secret; the webhook or the poll settles the invoice once the customer authenticated."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ledger.billing.invoice import Invoice, InvoiceStatus
from ledger.core.errors import InvalidCommand, NotFound, PaymentDeclined, Unavailable
from ledger.invoicing import store
from ledger.invoicing.collect import charge_request
from ledger.invoicing.payment_guard import is_live_conflict, look
from ledger.invoicing.settlement import invoice_paid, manual_key
from ledger.payments.charges import charge, resume
from ledger.payments.context import PaymentContext
from ledger.payments.store import Payment, PaymentStatus


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    """The invoice as it stands after, and the payment that paid it or is under way (None: an
    invoice paid without one, as a zero invoice is)."""

    invoice: Invoice
    payment: Payment | None


async def _decide(ctx: PaymentContext, organization_id: UUID, invoice_id: UUID) -> tuple[Invoice, Payment | None]:
    invoice, payment = await look(ctx.pool, invoice_id)
    if invoice is None or invoice.organization_id != organization_id:
        raise NotFound("invoice not found")
    return invoice, payment


async def _carry_on(ctx: PaymentContext, payment: Payment) -> Payment:
    """Take the invoice's live payment as far as it goes now."""
    if payment.status is PaymentStatus.SUCCEEDED:
        return payment
    return await resume(ctx, payment, off_session=False)


async def _pay(
    ctx: PaymentContext, organization_id: UUID, invoice_id: UUID, idempotency_key: str, payment_method_id: str | None
) -> tuple[Invoice, Payment | None]:
    for _ in range(3):
        invoice, live = await _decide(ctx, organization_id, invoice_id)
        if invoice.status is InvoiceStatus.PAID:
            return invoice, live
        if live is not None:
            return invoice, await _carry_on(ctx, live)
        if invoice.status is not InvoiceStatus.OPEN or invoice.amount_due <= 0:
            raise InvalidCommand(f"invoice {invoice.number} is {invoice.status.value}: nothing to pay")
        key = manual_key(invoice.id, idempotency_key)
        request = charge_request(invoice, key, payment_method_id=payment_method_id, off_session=False)
        try:
            return invoice, await charge(ctx, request)
        except asyncpg.UniqueViolationError as error:
            if not is_live_conflict(error):
                raise
            # Another request started the invoice's payment meanwhile: answer that one.
    raise Unavailable("the invoice's payment is changing: try again")


async def pay_invoice(
    ctx: PaymentContext, organization_id: UUID, invoice_id: UUID, idempotency_key: str, payment_method_id: str | None
) -> InvoicePayment:
    """Charge the invoice's amount due to the card given (default: the organization's default card),
    unless a payment of it is under way or done already (that one is answered). A declined card is
    PAYMENT_DECLINED with Stripe's code and leaves the invoice open; a card that needs
    authentication answers the payment in REQUIRES_ACTION (its client secret for Stripe.js)."""
    _, payment = await _pay(ctx, organization_id, invoice_id, idempotency_key, payment_method_id)
    if payment is not None and payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        raise PaymentDeclined(
            f"the card was declined: {payment.failure_message or payment.decline_code or 'no reason given'}",
            payment.decline_code or "card_declined",
        )
    after = await store.load_invoice(ctx.pool, invoice_id)
    assert after is not None
    if after.status is InvoiceStatus.OPEN and payment is not None and payment.status is PaymentStatus.SUCCEEDED:
        # The hook may still be running for the request that made it (or a crash came between the
        # two): run it here too (idempotent, it waits for the invoice's lock), so a success answers
        # the invoice paid.
        await invoice_paid(ctx, payment)
        after = await store.load_invoice(ctx.pool, invoice_id)
        assert after is not None
    return InvoicePayment(after, payment)
