"""An annual plan's refund (seed 000): the payment of the period's invoice, refunded within 30 days
of the period's start for the unused share of the fee (to the second, half-up to the cent), once
per payment (another key, or several at once: NOT_REFUNDABLE); outside the window, or for a
monthly plan, NOT_REFUNDABLE. (The invoice is made by hand at the period's start here: the invoice
cron issues it at the period's end, past the window, see the README.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import asyncpg

from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Interval
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind
from ledger.invoicing import store
from ledger.payments.charges import ChargeRequest, charge
from ledger.payments.store import PaymentStatus, Purpose
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.payments_support import jobs_context
from tests.recharge_setup import payment_context, refund_call, refunds_in_stripe, with_card
from tests.stripe_fake import CARD_OK, FakeStripe
from tests.subscription_calls import SUBSCRIPTION, call

FEE = 20_000  # two seats of SeatsCo's Team at $100 a year


async def paid_invoice(
    service: Service, stripe: FakeStripe, pool: asyncpg.Pool, name: str, age: timedelta, interval: str = "ANNUAL"
) -> tuple[Ledger, dict[str, Any], str]:
    """An organization on SeatsCo's Team for two seats whose current period started `age` ago, with
    that period's invoice (the fee) paid by card; its payment id."""
    org = await Ledger.create(service, name)
    anchor = datetime.now(UTC).replace(microsecond=0) - age
    subscription = await call(service, "subscribe", SUBSCRIPTION, organizationId=org.org, plan="seatsco-team",
                              seats=2, interval=interval, anchor=anchor.isoformat(), idempotencyKey=name)  # fmt: skip
    assert "codes" not in subscription, subscription
    period = Calendar.of(anchor, "UTC", Interval(interval.lower())).period_at(datetime.now(UTC))
    fee = FEE if interval == "ANNUAL" else 2_000
    line = InvoiceLine(LineKind.SEATS, "Team, 2 seats", Decimal(2), Decimal(fee) / 200, fee, source="seats")
    invoice = Invoice(
        id=uuid.uuid4(), organization_id=UUID(org.org), subscription_id=UUID(subscription["id"]), number=name,
        period_start=period.start, period_end=period.end, currency="USD", collection=Collection.CHARGE_AUTOMATICALLY,
        status=InvoiceStatus.OPEN, issued_at=period.start, due_at=period.start, lines=(line,),
    )  # fmt: skip
    async with pool.acquire() as connection, connection.transaction():
        assert await store.insert_invoice(connection, invoice)
    async with jobs_context(service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
        request = ChargeRequest(UUID(org.org), Purpose.INVOICE, f"invoice:{invoice.id}:1", fee, "USD", True,
                                invoice_id=invoice.id)  # fmt: skip
        payment = await charge(payment_context(ctx), request)
    assert payment.status is PaymentStatus.SUCCEEDED
    return org, subscription, str(payment.id)


def unused(fee: int, start: datetime, end: datetime, at: datetime) -> Decimal:
    share = Decimal(int((end - at).total_seconds())) / Decimal(int((end - start).total_seconds()))
    return (Decimal(fee) / 100 * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def test_an_annual_plan_is_refunded_pro_rata_within_30_days_of_its_period_start_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org, subscription, payment_id = await paid_invoice(paying_service, stripe, pool, "Annual early", timedelta(days=10))
    start = datetime.fromisoformat(subscription["currentPeriod"]["start"])
    end = datetime.fromisoformat(subscription["currentPeriod"]["end"])
    before = datetime.now(UTC)
    first = await refund_call(paying_service, org, paymentId=payment_id, reason="annual within 30 days")
    after = datetime.now(UTC)
    assert first["status"] == "SUCCEEDED" and first["credits"] == "0" and first["ledgerTransactionId"] is None
    # The unused share of $200 at the refund's second: about 355 of 365 days.
    assert unused(FEE, start, end, after) <= Decimal(first["money"]["value"]) <= unused(FEE, start, end, before)
    assert Decimal("194") < Decimal(first["money"]["value"]) < Decimal("195")
    assert await refund_call(paying_service, org, paymentId=payment_id, reason="annual within 30 days") == first
    intent = await pool.fetchval("SELECT payment_intent_id FROM payments WHERE id = $1", UUID(payment_id))
    [refunded] = refunds_in_stripe(stripe, intent)
    assert refunded["amount"] == int(Decimal(first["money"]["value"]) * 100)
    # Once per payment: another key does not refund the rest (the days used) too.
    again = await refund_call(paying_service, org, paymentId=payment_id, idempotencyKey="refund-2")
    assert again == {"codes": ["NOT_REFUNDABLE"]}
    assert len(refunds_in_stripe(stripe, intent)) == 1
    assert await pool.fetchval("SELECT count(*) FROM refunds WHERE payment_id = $1", UUID(payment_id)) == 1
    assert (
        await pool.fetchval("SELECT refunded_amount FROM payments WHERE id = $1", UUID(payment_id))
        == (refunded["amount"])
    )


async def test_an_annual_refund_asked_under_several_keys_at_once_refunds_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org, _, payment_id = await paid_invoice(paying_service, stripe, pool, "Annual raced", timedelta(days=5))
    answers = await asyncio.gather(
        *(refund_call(paying_service, org, paymentId=payment_id, idempotencyKey=f"race-{n}") for n in range(4))
    )
    done = [answer for answer in answers if "codes" not in answer]
    assert len(done) == 1 and done[0]["status"] == "SUCCEEDED", answers
    assert all(answer == {"codes": ["NOT_REFUNDABLE"]} for answer in answers if "codes" in answer)
    intent = await pool.fetchval("SELECT payment_intent_id FROM payments WHERE id = $1", UUID(payment_id))
    assert len(refunds_in_stripe(stripe, intent)) == 1


async def test_an_annual_plan_past_30_days_or_a_monthly_plan_is_not_refundable(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    late, _, late_payment = await paid_invoice(paying_service, stripe, pool, "Annual late", timedelta(days=31))
    monthly, _, monthly_payment = await paid_invoice(paying_service, stripe, pool, "Monthly", timedelta(days=3),
                                                     interval="MONTHLY")  # fmt: skip
    assert await refund_call(paying_service, late, paymentId=late_payment) == {"codes": ["NOT_REFUNDABLE"]}
    assert await refund_call(paying_service, monthly, paymentId=monthly_payment) == {"codes": ["NOT_REFUNDABLE"]}
    assert await pool.fetchval("SELECT count(*) FROM refunds") == 0
