"""Refunds: what is left of a payment's purchased lot goes back, in the ledger and through Stripe,
each exactly once under one refund id.

1. The `refunds` row is written first, keyed (organization, request key): its id is the refund id,
   and a retry finds it and carries on from where the first try stopped.
2. The ledger's `RefundLot` (key `refund:<id>`) takes back the lot's unused remainder and answers
   its money at the lot's cost basis (`details.amount_refunded`); that, half-up to the minor unit
   and never more than the payment's amount less what was refunded already, is the refund's
   amount. A retry sends the same key: the ledger answers the first result, reversing nothing twice.
3. Under the row's lock Stripe is asked for a refund already made with `metadata.refund_id` (a
   server that ignores idempotency keys would make a second one), and only then one is created,
   with the idempotency key `refund:<id>`. Its id and status are recorded with the payment's
   refunded amount in one statement, once.
4. When that step fails for good (Stripe refuses: the charge was disputed, or refunded in Stripe's
   dashboard, which its list of the intent's refunds shows; or nothing is left of the payment to
   refund), the credits taken back are given back first, as a
   purchased lot with the reversed lot's terms and expiry under `refund:<id>:restore`, and only then
   the refund is marked failed: the money and the credits never both go. (A crash between the two
   leaves it pending: the retry fails the same way, and the ledger answers the same restore.)

Only purchased credits bought with a payment (a pack or an auto-recharge) are refundable: bonus,
base and every other lot are NOT_REFUNDABLE, as is a payment that granted nothing. An annual
plan's invoice payment is refunded pro rata within 30 days of its period's start, once
(`ledger.payments.refund_annual`): a refund under another key is NOT_REFUNDABLE.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from uuid import UUID

from ledger.billing.money_format import round_minor, to_minor
from ledger.core.commands import GrantCredits, LotKind, RefundLot
from ledger.core.entries import Status
from ledger.core.errors import (
    ErrorCode,
    IdempotencyConflict,
    InvalidCommand,
    NotFound,
    NotRefundable,
    NotReversible,
    error_for,
)
from ledger.core.money import MicroCredits, credits_money, parse_credits
from ledger.payments.context import PaymentContext
from ledger.payments.gateway import RefundView
from ledger.payments.refund_annual import annual_refund_amount
from ledger.payments.refunds_store import (
    RefundRecord,
    RefundStatus,
    insert_refund,
    lot_facts,
    lot_terms,
    payment_of_lot,
    record_failed,
    record_reversal,
    record_stripe_refund,
    refund_by_id,
    refund_by_key,
    refunds_of_payment,
)
from ledger.payments.store import Payment, PaymentStatus, Purpose, payment_by_id
from ledger.store.pool import Connection
from ledger.subscriptions.effects import LedgerEffect

log = logging.getLogger(__name__)

NOT_PURCHASED = "only purchased credits are refundable (bonus and base credits are not)"
ONCE = "an annual plan's invoice payment is refunded once"


@dataclass(frozen=True, slots=True)
class RefundRequest:
    organization_id: UUID
    request_key: str  # the client's idempotency key: one refund per key
    payment_id: UUID | None = None  # the payment to refund, or
    lot_id: UUID | None = None  # the lot whose payment to refund
    reason: str = ""


def refund_key(refund: RefundRecord) -> str:
    return f"refund:{refund.id}"


async def refund(ctx: PaymentContext, request: RefundRequest) -> RefundRecord:
    """Refund once per (organization, request key), carrying on a retry from where it stopped."""
    payment = await _payment_of(ctx, request)
    existing = await refund_by_key(ctx.pool, request.organization_id, request.request_key)
    if existing is None and payment.purpose is Purpose.INVOICE:
        done = await _other_refund(ctx.pool, payment, None)
        if done is not None:
            raise NotRefundable(f"{ONCE}: refund {done.id} refunded it")
    if existing is None:
        amount, credits = await _estimate(ctx, payment)
        fresh = RefundRecord(
            id=uuid.uuid4(), organization_id=payment.organization_id, payment_id=payment.id,
            request_key=request.request_key, amount=amount, currency=payment.currency, credits=credits,
            reason=request.reason, status=RefundStatus.PENDING,
        )  # fmt: skip
        existing = await insert_refund(ctx.pool, fresh)
    if existing.payment_id != payment.id:
        raise IdempotencyConflict("this idempotency key was used to refund another payment")
    if existing.status is RefundStatus.FAILED:
        raise NotRefundable("this refund failed: no money was refunded under this idempotency key")
    if existing.ledger_transaction_id is None and payment.purpose is not Purpose.INVOICE:
        existing = await _reverse(ctx, existing, payment)
    if existing.stripe_refund_id is None:
        existing = await _refund_money(ctx, existing)
    return existing


async def _payment_of(ctx: PaymentContext, request: RefundRequest) -> Payment:
    """The refundable payment the request names (by id, or by the lot it granted)."""
    payment_id = request.payment_id
    if payment_id is None:
        assert request.lot_id is not None
        lot = await lot_facts(ctx.pool, request.organization_id, request.lot_id)
        if lot is None:
            raise NotFound(f"no lot {request.lot_id}")
        payment_id = await payment_of_lot(ctx.pool, request.organization_id, request.lot_id)
        if payment_id is None:
            raise NotRefundable(f"{NOT_PURCHASED}: this {lot.kind} lot was not bought")
    payment = await payment_by_id(ctx.pool, payment_id)
    if payment is None or payment.organization_id != request.organization_id:
        raise NotFound(f"no payment {payment_id}")
    if payment.status is not PaymentStatus.SUCCEEDED or payment.payment_intent_id is None:
        raise NotRefundable("only a succeeded payment can be refunded")
    if payment.purpose is not Purpose.INVOICE and payment.lot_id is None:
        raise NotRefundable("the payment has not granted its credits yet")
    return payment


async def _estimate(ctx: PaymentContext, payment: Payment) -> tuple[int, int]:
    """What the refund will be (money in minor units, micro-credits), as the lot stands now; the
    ledger's reversal says what it is. Refuses when nothing would be refunded."""
    if payment.purpose is Purpose.INVOICE:
        return await annual_refund_amount(ctx, payment), 0
    assert payment.lot_id is not None
    lot = await lot_facts(ctx.pool, payment.organization_id, payment.lot_id)
    if lot is None or lot.kind != "purchased" or not lot.refundable:
        raise NotRefundable(NOT_PURCHASED)
    if lot.remaining == 0:
        raise NotReversible("nothing is left of the payment's credits to refund")
    amount = _money(payment, credits_money(lot.remaining, lot.price_per_credit or Decimal(0)))
    if amount == 0:
        raise NotRefundable("what is left of the payment's credits is worth less than one minor unit")
    return amount, lot.remaining


def _money(payment: Payment, major: Decimal) -> int:
    """Money the ledger answered, half-up to the minor unit, within what is left of the payment."""
    return max(0, min(to_minor(round_minor(major, payment.currency), payment.currency),
                      payment.amount - payment.refunded_amount))  # fmt: skip


async def _reverse(ctx: PaymentContext, refund: RefundRecord, payment: Payment) -> RefundRecord:
    """Take back the lot's remainder in the ledger (once, under `refund:<id>`)."""
    assert payment.lot_id is not None
    command = RefundLot(payment.lot_id, refund.reason)
    [reply] = await ctx.effects.apply(refund.organization_id, [LedgerEffect(refund_key(refund), command, ctx.now)])
    result = reply.result
    if result.status is Status.REJECTED:
        await record_failed(ctx.pool, refund.id)
        log.info("refund %s: the ledger refused %s: %s", refund.id, result.code, result.message)
        if result.code == ErrorCode.NOT_REVERSIBLE:
            raise NotReversible("nothing is left of the payment's credits to refund")
        raise error_for(result.code or ErrorCode.INVALID_INPUT, result.message or "the ledger refused the refund")
    credits = parse_credits(result.details["credits_refunded"])
    amount = _money(payment, Decimal(result.details.get("amount_refunded", "0")))
    if amount == 0:
        # Taken back, but worth nothing in money: no Stripe refund to make.
        log.warning("refund %s: %s credits back, worth less than a minor unit", refund.id, credits)
        await record_failed(ctx.pool, refund.id)
        return replace(refund, status=RefundStatus.FAILED, ledger_transaction_id=reply.transaction_id)
    await record_reversal(ctx.pool, refund.id, reply.transaction_id, credits, amount)
    return replace(refund, ledger_transaction_id=reply.transaction_id, credits=credits, amount=amount)


def _status(view: RefundView) -> RefundStatus:
    if view.status == "succeeded":
        return RefundStatus.SUCCEEDED
    return RefundStatus.FAILED if view.status in ("failed", "canceled") else RefundStatus.PENDING


async def _other_refund(connection: Connection, payment: Payment, refund_id: UUID | None) -> RefundRecord | None:
    """An invoice payment's refund made already (at Stripe, not failed) other than `refund_id`."""
    for other in await refunds_of_payment(connection, payment.id):
        if other.id != refund_id and other.stripe_refund_id is not None and other.status is not RefundStatus.FAILED:
            return other
    return None


async def _refund_money(ctx: PaymentContext, refund: RefundRecord) -> RefundRecord:
    """Stripe's refund; when it fails for good, the credits come back and the refund fails."""
    try:
        return await _stripe_refund(ctx, refund)
    except (InvalidCommand, NotFound, NotRefundable) as error:
        await _give_back(ctx, refund)
        await record_failed(ctx.pool, refund.id)
        log.warning("refund %s failed for good: %s", refund.id, error.message)
        restored = " (the credits taken back were given back)" if refund.ledger_transaction_id else ""
        raise NotRefundable(f"the refund failed: {error.message}{restored}") from None


async def _stripe_refund(ctx: PaymentContext, refund: RefundRecord) -> RefundRecord:
    """Stripe's refund, under the row's lock: an existing one for this refund id is taken as it is."""
    async with ctx.pool.acquire() as connection, connection.transaction():
        payment = await payment_by_id(connection, refund.payment_id, for_update=True)
        locked = await refund_by_id(connection, refund.id, for_update=True)
        assert payment is not None and payment.payment_intent_id is not None and locked is not None
        if locked.stripe_refund_id is not None or locked.status is RefundStatus.FAILED:
            return locked
        if payment.purpose is Purpose.INVOICE and await _other_refund(connection, payment, locked.id) is not None:
            raise NotRefundable(ONCE)
        if locked.amount > payment.amount - payment.refunded_amount:
            raise NotRefundable("the payment was refunded already")
        refunds = await ctx.gateway.list_refunds(payment.payment_intent_id)
        view = next((r for r in refunds if r.metadata.get("refund_id") == str(refund.id)), None)
        if view is None:
            # Stripe's own total counts refunds made outside this service too (its dashboard).
            at_stripe = sum(r.amount for r in refunds if r.status not in ("failed", "canceled"))
            if locked.amount > payment.amount - at_stripe:
                raise NotRefundable("Stripe has refunded the payment already (outside this service)")
            view = await ctx.gateway.create_refund(
                payment_intent=payment.payment_intent_id, amount=locked.amount, idempotency_key=refund_key(locked),
                metadata={"refund_id": str(locked.id), "org": str(locked.organization_id)},
            )  # fmt: skip
        await record_stripe_refund(connection, refund.id, view.id, _status(view))
        found = await refund_by_id(connection, refund.id)
    assert found is not None
    log.info("refund %s: Stripe refund %s %s (%d %s)", refund.id, view.id, view.status, found.amount, found.currency)
    return found


async def _give_back(ctx: PaymentContext, refund: RefundRecord) -> None:
    """The credits the refund took back, granted again (once, under `refund:<id>:restore`) as a
    purchased lot with the reversed lot's terms and expiry."""
    payment = await payment_by_id(ctx.pool, refund.payment_id)
    assert payment is not None
    if refund.ledger_transaction_id is None or payment.lot_id is None or refund.credits <= 0:
        return  # nothing was taken back (an invoice payment's refund is money only)
    terms = await lot_terms(ctx.pool, refund.organization_id, payment.lot_id)
    assert terms is not None
    grant = GrantCredits(amount=MicroCredits(refund.credits), kind=LotKind.PURCHASED, expires_at=terms.expires_at,
                         team_id=terms.team_id, products=terms.products, terms=terms.terms)  # fmt: skip
    key = f"{refund_key(refund)}:restore"
    [reply] = await ctx.effects.apply(refund.organization_id, [LedgerEffect(key, grant, ctx.now)])
    if reply.result.status is Status.REJECTED:  # e.g. the lot's expiry has passed: they would be gone by now
        log.error("refund %s: the credits could not be given back: %s %s", refund.id, reply.result.code,
                  reply.result.message)  # fmt: skip
