"""Charging a card: one payments row per (organization, request key), then one PaymentIntent.

The row is written first (status creating) so that a retry of the same request, whatever happened
to the first try, finds it instead of charging again; the intent is created under the idempotency
key `payment:<payment id>` (real Stripe answers a repeat with the same intent) and carries the
payment's id in its metadata, so a webhook or the poll can find the payment even when the answer
was lost. While one request creates the intent it holds the row's lock, so a concurrent retry
waits and then sees the intent. The answer goes through `settle_intent`, like every other road.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from ledger import constants
from ledger.core.errors import IdempotencyConflict, InvalidCommand, NotFound, PaymentMethodRequired
from ledger.core.validation import check_text
from ledger.payments.context import PaymentContext
from ledger.payments.customers import ensure_customer
from ledger.payments.gateway import IntentStatus, IntentView
from ledger.payments.settle import settle_intent
from ledger.payments.store import (
    UNSETTLED,
    Payment,
    PaymentStatus,
    Purpose,
    insert_payment,
    payment_by_id,
    payment_by_request,
    record_outcome,
)

__all__ = ["ChargeRequest", "Payment", "Purpose", "charge", "create_intent"]

log = logging.getLogger(__name__)

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    organization_id: UUID
    purpose: Purpose
    request_key: str  # unique per organization: a retry with it finds the same payment
    amount: int  # minor units, > 0
    currency: str  # ISO 4217, upper case
    off_session: bool
    payment_method_id: str | None = None  # None: the organization's default
    pack_key: str | None = None
    credits: int | None = None  # micro-credits granted once paid (pack, recharge)
    price_per_credit: Decimal | None = None  # the grant's cost basis
    invoice_id: UUID | None = None
    description: str = ""


def _check(request: ChargeRequest) -> None:
    if not 1 <= len(request.request_key) <= constants.payment_request_key_length_max:
        raise InvalidCommand(f"a payment's key must be 1 to {constants.payment_request_key_length_max} characters")
    check_text(request.request_key, "idempotency key")
    if request.amount <= 0 or request.amount > constants.payment_amount_max_minor_units:
        raise InvalidCommand("a payment's amount must be positive and at most 10^12 minor units")
    if not _CURRENCY.fullmatch(request.currency):
        raise InvalidCommand("a currency is three upper-case letters (ISO 4217)")
    if request.credits is not None and request.credits <= 0:
        raise InvalidCommand("a payment grants a positive number of credits, or none")


def _same_request(payment: Payment, request: ChargeRequest) -> None:
    """A request key used again must name the same charge."""
    mine = (request.purpose, request.amount, request.currency, request.pack_key, request.invoice_id)
    theirs = (payment.purpose, payment.amount, payment.currency, payment.pack_key, payment.invoice_id)
    if mine != theirs:
        raise IdempotencyConflict("this idempotency key was used for another payment")


async def charge(ctx: PaymentContext, request: ChargeRequest) -> Payment:
    """Charge for `request`, once per (organization, request key). Never raises for a decline:
    the payment comes back FAILED with Stripe's decline code."""
    _check(request)
    existing = await payment_by_request(ctx.pool, request.organization_id, request.request_key)
    customer = None  # known here for a new payment: its intent need not read it again
    if existing is None:
        customer = await ensure_customer(ctx, request.organization_id)
        method = await _method_of(ctx, customer, request.payment_method_id)
        existing = await insert_payment(ctx.pool, _new_payment(ctx, request, method))
        if existing is None:  # a concurrent request with the same key won the insert
            existing = await payment_by_request(ctx.pool, request.organization_id, request.request_key)
            assert existing is not None
    _same_request(existing, request)
    return await resume(ctx, existing, request.off_session, request.description, customer)


async def _method_of(ctx: PaymentContext, customer: str, payment_method_id: str | None) -> str:
    """The card to charge: the one given, if it is the organization's own (another organization's
    card, or one Stripe does not know, is NOT_FOUND before anything is written), else the default."""
    if payment_method_id is None:
        default = await ctx.gateway.default_payment_method(customer)
        if default is None:
            raise PaymentMethodRequired("no payment method was given and the organization has no default one")
        return default
    try:
        method = await ctx.gateway.retrieve_payment_method(payment_method_id)
    except (NotFound, InvalidCommand):
        method = None
    if method is None or method.customer != customer:
        raise NotFound("no such payment method in this organization")
    return method.id


def _new_payment(ctx: PaymentContext, request: ChargeRequest, payment_method: str) -> Payment:
    return Payment(
        id=uuid.uuid4(), organization_id=request.organization_id, purpose=request.purpose,
        status=PaymentStatus.CREATING, amount=request.amount, currency=request.currency, payment_intent_id=None,
        decline_code=None, failure_message=None, credits=request.credits, lot_id=None, grant_transaction_id=None,
        invoice_id=request.invoice_id, pack_key=request.pack_key, created_at=ctx.now, succeeded_at=None,
        refunded_amount=0, request_key=request.request_key, price_per_credit=request.price_per_credit,
        payment_method_id=payment_method,
    )  # fmt: skip


async def resume(
    ctx: PaymentContext, payment: Payment, off_session: bool, description: str = "", customer: str | None = None
) -> Payment:
    """Take a payment as far as it goes now: create its intent if it has none yet, or read the
    latest state of the one it has; then settle what Stripe says (idempotent). A payment already
    final is answered as it is (a succeeded one whose grant is missing is settled again)."""
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        return payment
    if payment.status is PaymentStatus.SUCCEEDED and (payment.lot_id or payment.purpose is Purpose.INVOICE):
        return payment
    if payment.payment_intent_id is None and payment.status is PaymentStatus.CREATING:
        intent = await create_intent(ctx, payment.id, off_session, description, customer)
        if intent is None:  # another request created it meanwhile
            fresh = await payment_by_id(ctx.pool, payment.id)
            assert fresh is not None
            return await resume(ctx, fresh, off_session, description)
    else:
        assert payment.payment_intent_id is not None
        intent = await ctx.gateway.retrieve_payment_intent(payment.payment_intent_id)
    settled = await settle_intent(ctx, intent, "answer", payment_id=payment.id)
    assert settled is not None
    return settled


async def create_intent(
    ctx: PaymentContext, payment_id: UUID, off_session: bool, description: str, customer: str | None = None
) -> IntentView | None:
    """Create the payment's intent under its row lock; None when the row has one already (or is
    no longer waiting for one). A decline is recorded here too: its 402 may not name the intent.
    The customer is known before the lock is taken: nothing here asks the pool for a second
    connection while it holds one (a small jobs pool would wait on itself); `customer` is the
    organization's, when the caller has it already."""
    if customer is None:
        unlocked = await payment_by_id(ctx.pool, payment_id)
        assert unlocked is not None
        customer = await ensure_customer(ctx, unlocked.organization_id)
    async with ctx.pool.acquire() as connection, connection.transaction():
        payment = await payment_by_id(connection, payment_id, for_update=True)
        assert payment is not None
        if payment.payment_intent_id is not None or payment.status not in UNSETTLED:
            return None
        assert payment.payment_method_id is not None
        intent = await _create(ctx, payment, customer, off_session, description)
        # Recorded before the lock goes, so a waiting retry sees the intent (or the decline).
        await record_outcome(connection, payment.id, intent.id, PaymentStatus(intent.status.value),
                             intent.decline_code, intent.failure_message, ctx.now)  # fmt: skip
    log.info("payment %s: intent %s %s", payment_id, intent.id or "(unnamed)", intent.status.value)
    return intent


async def _create(
    ctx: PaymentContext, payment: Payment, customer: str, off_session: bool, description: str
) -> IntentView:
    """The intent Stripe makes; one it refuses for good (the card gone, a request it will never take)
    is a failed intent, so the payment ends failed instead of being created again for hours."""
    assert payment.payment_method_id is not None
    try:
        return await ctx.gateway.create_payment_intent(
            customer=customer,
            payment_method=payment.payment_method_id,
            amount=payment.amount,
            currency=payment.currency,
            off_session=off_session,
            idempotency_key=f"payment:{payment.id}",
            # What finds the payment again (a webhook, the poll), and what a person reads in Stripe.
            metadata={"payment_id": str(payment.id), "org": str(payment.organization_id),
                      "purpose": payment.purpose.value, **({"description": description} if description else {})},
        )  # fmt: skip
    except (NotFound, InvalidCommand) as refused:
        log.warning("payment %s: Stripe refused its intent: %s", payment.id, refused.message)
        return IntentView(id="", status=IntentStatus.FAILED, amount=payment.amount, currency=payment.currency,
                          decline_code="refused", failure_message=refused.message[:500])  # fmt: skip
