"""The one effect of a PaymentIntent's outcome, reached by three roads: the charge's own answer,
the webhook, and the reconciliation poll (`via`: answer, webhook, poll). Any of them may come
first, any may repeat, and they may come in any order, so:

- the payment is found by the intent's id, or by the `payment_id` in its metadata (the answer to
  a declined create may not name the intent; a webhook may beat the answer's record);
- `succeeded` is terminal: a late `failed` (or `processing`) never downgrades it;
- a pack's or recharge's credits are granted as one purchased lot by a ledger command keyed
  `payment:<intent id>`, which the ledger applies once, then the pack's `billing_charges` line
  (same key, once), then the grant's lot and transaction are recorded on the payment: a payment
  with a lot recorded is done, one without is granted again (the ledger answers the first grant);
- the hooks (an invoice paid or failed, a recharge failed) run on every road and are idempotent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.money_format import from_minor
from ledger.core.billing_commands import RaiseBillingAlert
from ledger.core.commands import AlertKind, GrantCredits, LotKind, LotSource, LotTerms
from ledger.core.entries import Status
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits
from ledger.invoicing.settlement import invoice_paid, invoice_payment_failed
from ledger.payments.context import PaymentContext
from ledger.payments.customers import customer_of
from ledger.payments.gateway import IntentStatus, IntentView
from ledger.payments.recharge_outcomes import recharge_failed
from ledger.payments.store import (
    Payment,
    PaymentStatus,
    Purpose,
    count_grant_refused,
    payment_by_id,
    payment_by_intent,
    record_grant,
    record_outcome,
)
from ledger.store.catalog_versions import load_catalog
from ledger.subscriptions.effects import LedgerEffect
from ledger.subscriptions.store import BillingCharge, insert_charge, live_subscription_of

log = logging.getLogger(__name__)


def grant_key(intent_id: str) -> str:
    """The idempotency key of what a payment grants (and of its billing charge line)."""
    return f"payment:{intent_id}"


async def _payment_of(ctx: PaymentContext, intent: IntentView, payment_id: UUID | None) -> Payment | None:
    if intent.id:
        found = await payment_by_intent(ctx.pool, intent.id)
        if found is not None:
            return found
    if payment_id is None:
        try:
            payment_id = UUID(intent.metadata.get("payment_id", ""))
        except ValueError:
            return None
    return await payment_by_id(ctx.pool, payment_id)


def _matches(intent: IntentView, payment: Payment, customer: str | None, via: str) -> bool:
    """Whether `intent` may settle `payment`: the payment's own intent (or, before its id is known,
    one naming it), for its organization's customer, amount and currency. Anything else is logged,
    not settled."""
    problem = None
    if payment.payment_intent_id is not None and intent.id and intent.id != payment.payment_intent_id:
        problem = f"payment {payment.id} has intent {payment.payment_intent_id}"
    elif intent.customer is not None and intent.customer != customer:
        problem = f"it charges customer {intent.customer}, its payment's organization is {customer}"
    elif intent.metadata.get("org", str(payment.organization_id)) != str(payment.organization_id):
        problem = f"it names organization {intent.metadata.get('org')}, its payment {payment.organization_id}"
    elif intent.id and (intent.amount, intent.currency) != (payment.amount, payment.currency):
        problem = f"it charges {intent.amount} {intent.currency}, its payment {payment.amount} {payment.currency}"
    if problem is not None:
        log.error("%s: intent %s not settled: %s", via, intent.id, problem)
    return problem is None


async def settle_intent(
    ctx: PaymentContext, intent: IntentView, via: str, *, payment_id: UUID | None = None
) -> Payment | None:
    """Record what `intent` says about its payment and do what follows from it, once; None when
    the intent is none of ours. `payment_id` names the payment when the caller knows it."""
    payment = await _payment_of(ctx, intent, payment_id)
    if payment is None:
        log.info("%s: intent %s is not one of our payments", via, intent.id)
        return None
    if not _matches(intent, payment, await customer_of(ctx.pool, payment.organization_id), via):
        return payment
    async with ctx.pool.acquire() as connection, connection.transaction():
        locked = await payment_by_id(connection, payment.id, for_update=True)
        assert locked is not None
        if locked.status is PaymentStatus.SUCCEEDED and intent.status is not IntentStatus.SUCCEEDED:
            log.warning("%s: intent %s says %s after success: ignored", via, intent.id, intent.status.value)
            payment = locked
        else:
            payment = await record_outcome(connection, payment.id, intent.id, PaymentStatus(intent.status.value),
                                           intent.decline_code, intent.failure_message, ctx.now)  # fmt: skip
    if payment.status is PaymentStatus.SUCCEEDED:
        payment = await _succeeded(ctx, payment)
    elif payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        await _failed(ctx, payment)
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        return replace(payment, client_secret=intent.client_secret, next_action_type=intent.next_action_type)
    return payment


async def _succeeded(ctx: PaymentContext, payment: Payment) -> Payment:
    match payment.purpose:
        case Purpose.PACK | Purpose.RECHARGE:
            if payment.lot_id is None:
                return await _grant(ctx, payment)
        case Purpose.INVOICE:
            await invoice_paid(ctx, payment)
    return payment


async def _failed(ctx: PaymentContext, payment: Payment) -> None:
    match payment.purpose:
        case Purpose.INVOICE:
            await invoice_payment_failed(ctx, payment)
        case Purpose.RECHARGE:
            await recharge_failed(ctx, payment)
        case Purpose.PACK:
            pass  # nothing was granted; the buyer was told the decline


async def _grant(ctx: PaymentContext, payment: Payment) -> Payment:
    """The paid credits: a purchased, refundable lot with the pack's expiry and products (the pack
    as the catalog had it when the payment was made) and the cost basis paid."""
    assert payment.payment_intent_id is not None and payment.credits is not None
    catalog = await load_catalog(ctx.pool)
    pack = catalog.pack_at(payment.pack_key, payment.created_at) if payment.pack_key else None
    days = pack.expires_after_days if pack is not None else None
    request = GrantCredits(
        amount=MicroCredits(payment.credits),
        kind=LotKind.PURCHASED,
        expires_at=payment.created_at + timedelta(days=days) if days else None,
        products=pack.products if pack is not None else None,
        terms=LotTerms(
            source=LotSource.PAYMENT, refundable=True, price_per_credit=payment.price_per_credit,
            currency=payment.currency,
        ),
    )  # fmt: skip
    key = grant_key(payment.payment_intent_id)
    if payment.grant_attempts >= constants.payment_grant_attempts_max:
        return payment  # refused for good: alerted once, an operator's to resolve
    try:
        [reply] = await ctx.effects.apply(payment.organization_id, [LedgerEffect(key, request, ctx.now)])
    except InvalidCommand as refused:  # refused before it was sent: a command out of the ledger's bounds
        await _grant_refused(ctx, payment, f"{refused.code} {refused.message}")
        return payment
    if reply.result.status is Status.REJECTED:
        await _grant_refused(ctx, payment, f"{reply.result.code} {reply.result.message}")
        return payment
    lot_id = UUID(reply.result.details["lot_id"])
    async with ctx.pool.acquire() as connection, connection.transaction():
        await insert_charge(connection, await _pack_charge(connection, payment, key, pack.name if pack else ""))
        recorded = await record_grant(connection, payment.id, lot_id, reply.transaction_id, ctx.now)
    log.info("payment %s granted lot %s (%s)", payment.id, lot_id, key)
    return recorded


async def _grant_refused(ctx: PaymentContext, payment: Payment, why: str) -> None:
    """The ledger refused a paid grant: re-sent by the reconciliation a few times (a refusal may pass,
    e.g. a pack's products changing), then alerted once (PAYMENT_FAILED) and left to an operator."""
    attempts = await count_grant_refused(ctx.pool, payment.id, ctx.now)
    log.warning("payment %s paid, but its grant was refused (%d): %s", payment.id, attempts, why)
    if attempts != constants.payment_grant_attempts_max:
        return
    log.error("payment %s paid but not granted after %d tries: %s", payment.id, attempts, why)
    name = f"paid but not granted: payment {payment.id}: {why}"[:200]
    alert = RaiseBillingAlert(kind=AlertKind.PAYMENT_FAILED, name=name,
                              value=MicroCredits(payment.amount), threshold=MicroCredits(0))  # fmt: skip
    key = f"grant-refused:{payment.payment_intent_id}"
    await ctx.effects.apply(payment.organization_id, [LedgerEffect(key, alert, ctx.now)])


async def _pack_charge(connection: asyncpg.Connection, payment: Payment, key: str, name: str) -> BillingCharge:
    """The pack's line for the invoice of the period it was bought in (already paid). The live
    subscription, if any, is the one whose invoice shows it; the payment's `succeeded_at` dates it."""
    subscription = await live_subscription_of(connection, payment.organization_id)
    money = from_minor(payment.amount, payment.currency)
    label = "Auto-recharge" if payment.purpose is Purpose.RECHARGE else "Credit pack"
    return BillingCharge(
        id=uuid.uuid5(uuid.NAMESPACE_URL, key), organization_id=payment.organization_id,
        subscription_id=subscription.id if subscription is not None else None, idempotency_key=key, kind="pack",
        description=f"{label}: {name or payment.pack_key}", quantity=Decimal(1), unit_price=money, amount=money,
        currency=payment.currency,
    )  # fmt: skip
