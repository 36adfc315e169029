"""Refunds end to end against localstripe: the lot's unused remainder reversed in the ledger and
its money refunded through Stripe, each exactly once under one refund id, even when retried, even
when a try crashed after the ledger step or after Stripe's refund (localstripe ignores idempotency
keys, so only our own keys guard it); bonus and base credits are not refundable."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from ledger.core.errors import Unavailable
from ledger.payments.gateway import Gateway, RefundView
from ledger.payments.refund_outcomes import charge_refunded
from ledger.payments.refunds import RefundRequest, refund
from ledger.payments.refunds_store import RefundStatus
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.payments_support import jobs_context
from tests.recharge_setup import (
    buy,
    payment_context,
    purchased_lots,
    refund_call,
    refund_in_stripe,
    refunds_in_stripe,
    use,
    with_card,
)
from tests.stripe_fake import CARD_OK, FakeStripe


async def refunded_amount(pool: asyncpg.Pool, payment_id: str) -> int:
    value: int = await pool.fetchval("SELECT refunded_amount FROM payments WHERE id = $1", UUID(payment_id))
    return value


async def test_a_refund_reverses_the_lots_remainder_and_refunds_its_money_once_however_often_retried(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(paying_service, "Refunded")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
    payment = await buy(paying_service, org)  # 50 credits for $150: $3 a credit
    await use(org, 5)  # 10 credits used: 40 left, worth $120
    first = await refund_call(paying_service, org, paymentId=payment["id"], reason="changed my mind")
    shown = (first["status"], first["money"]["value"], first["money"]["formatted"], first["credits"])
    assert shown == ("SUCCEEDED", "120.00", "$120.00", "40")
    assert first["stripeRefundId"].startswith("re_") and first["ledgerTransactionId"]
    for _ in range(3):  # retries with the same key answer the same refund and change nothing
        assert await refund_call(paying_service, org, paymentId=payment["id"], reason="changed my mind") == first
    [lot] = await purchased_lots(org)
    assert lot["remaining"] == "0"
    assert await org.balance() == {"total": "0", "held": "0", "available": "0"}
    [stripe_refund] = refunds_in_stripe(stripe, payment["paymentIntentId"])
    assert (stripe_refund["amount"], stripe_refund["metadata"]["refund_id"]) == (12_000, first["id"])
    assert await refunded_amount(pool, payment["id"]) == 12_000
    # Nothing is left: another refund (another key) is refused and refunds nothing.
    assert await refund_call(paying_service, org, paymentId=payment["id"], idempotencyKey="again") == {
        "codes": ["NOT_REVERSIBLE"]
    }
    assert len(refunds_in_stripe(stripe, payment["paymentIntentId"])) == 1


class _Crashing(Gateway):
    """Stripe as seen by a process that dies around the refund: before asking, or after Stripe made it."""

    def __init__(self, api_key: str, api_base: str, after: bool) -> None:
        super().__init__(api_key, api_base)
        self.after = after

    async def create_refund(self, **arguments: Any) -> RefundView:
        if self.after:
            await super().create_refund(**arguments)
        raise Unavailable("the process died here")


@pytest.mark.parametrize("after_stripe", [False, True], ids=["after the ledger", "after Stripe's refund"])
async def test_a_try_that_crashed_is_carried_on_by_the_retry_without_a_second_reversal_or_refund(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool, after_stripe: bool
) -> None:
    org = await Ledger.create(paying_service, "Crashed refund")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
        payment = await buy(paying_service, org)
        request = RefundRequest(UUID(org.org), "refund-crash", payment_id=UUID(payment["id"]))
        settings = paying_service.settings
        crashing = _Crashing(settings.stripe_api_key, settings.stripe_api_base, after=after_stripe)
        try:
            with pytest.raises(Unavailable):
                await refund(replace(payment_context(ctx), gateway=crashing), request)
        finally:
            await crashing.close()
        done = await refund(payment_context(ctx), request)
        assert await refund(payment_context(ctx), request) == done
    assert (done.status, done.amount, done.credits) == (RefundStatus.SUCCEEDED, 15_000, 50_000_000)
    assert len(refunds_in_stripe(stripe, payment["paymentIntentId"])) == 1
    assert await refunded_amount(pool, payment["id"]) == 15_000
    reversals = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2",
        UUID(org.org), f"refund:{done.id}",
    )  # fmt: skip
    assert reversals == 1
    assert (await org.balance())["total"] == "0"


async def test_bonus_and_base_credits_are_not_refundable_and_bad_requests_change_nothing(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org, other = await Ledger.create(paying_service, "Gifted"), await Ledger.create(paying_service, "Other")
    bonus = await org.accepted("grantCredits", amount="30", kind="BONUS")
    base = await org.accepted("grantCredits", amount="70", kind="BASE")
    for outcome in (bonus, base):
        assert await refund_call(paying_service, org, lotId=outcome["lotId"]) == {"codes": ["NOT_REFUNDABLE"]}
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
    payment = await buy(paying_service, org)
    assert await refund_call(paying_service, other, paymentId=payment["id"]) == {"codes": ["NOT_FOUND"]}
    assert await refund_call(paying_service, org) == {"codes": ["INVALID_INPUT"]}  # neither payment nor lot
    both = {"paymentId": payment["id"], "lotId": bonus["lotId"]}
    assert await refund_call(paying_service, org, **both) == {"codes": ["INVALID_INPUT"]}
    assert await refund_call(paying_service, org, paymentId="nope") == {"codes": ["INVALID_INPUT"]}
    assert await refund_call(paying_service, org, lotId=str(UUID(int=7))) == {"codes": ["NOT_FOUND"]}
    assert await pool.fetchval("SELECT count(*) FROM refunds") == 0
    assert (await org.balance())["total"] == "150"
    # The purchased lot, named by its id, is refundable: its payment is refunded.
    [lot] = await purchased_lots(org)
    by_lot = await refund_call(paying_service, org, lotId=lot["id"])
    assert (by_lot["paymentId"], by_lot["money"]["value"], by_lot["credits"]) == (payment["id"], "150.00", "50")
    # The same key for another payment is a conflict, and refunds nothing of it.
    second = await buy(paying_service, org, key="buy-2")
    assert await refund_call(paying_service, org, paymentId=second["id"]) == {"codes": ["IDEMPOTENCY_CONFLICT"]}
    assert refunds_in_stripe(stripe, second["paymentIntentId"]) == []


async def test_charge_refunded_marks_our_pending_refunds_succeeded_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(paying_service, "Webhook refund")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
        payment = await buy(paying_service, org)
        done = await refund_call(paying_service, org, paymentId=payment["id"])
        # As if Stripe had answered "pending": the event confirms it later (and again: no change).
        await pool.execute("UPDATE refunds SET status = 'pending' WHERE id = $1", UUID(done["id"]))
        event = {"id": "ch_x", "payment_intent": payment["paymentIntentId"], "refunded": False,
                 "refunds": {"data": [{"id": done["stripeRefundId"], "status": "succeeded"}]}}  # fmt: skip
        for _ in range(2):
            await charge_refunded(payment_context(ctx), event)
    assert await pool.fetchval("SELECT status FROM refunds WHERE id = $1", UUID(done["id"])) == "succeeded"
    assert await refunded_amount(pool, payment["id"]) == 15_000


async def test_a_refund_stripe_refuses_for_good_fails_and_gives_the_credits_back(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(paying_service, "Refunded elsewhere")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
    payment = await buy(paying_service, org, pack="brightmove-sms-1000")  # 1,000 SMS credits for 30 days
    [bought] = await purchased_lots(org)
    # Refunded in full in Stripe's dashboard first: Stripe refuses ours for good.
    refund_in_stripe(stripe, payment["paymentIntentId"])
    for _ in range(2):  # the retry answers the same, and gives nothing back twice
        assert await refund_call(paying_service, org, paymentId=payment["id"]) == {"codes": ["NOT_REFUNDABLE"]}
    row = await pool.fetchrow("SELECT * FROM refunds WHERE payment_id = $1", UUID(payment["id"]))
    assert (row["status"], row["stripe_refund_id"], row["credits"]) == ("failed", None, 1_000_000_000)
    assert await refunded_amount(pool, payment["id"]) == 0
    # The credits are back: a purchased lot with the reversed one's terms and expiry, once.
    assert await org.balance() == {"total": "1000", "held": "0", "available": "1000"}
    lots = await pool.fetch(
        "SELECT id, amount, remaining, kind, expires_at, products, source, refundable, revenue_treatment,"
        " price_per_credit, currency FROM credit_lots WHERE org_id = $1 ORDER BY created_at", UUID(org.org),
    )  # fmt: skip
    [reversed_lot, lot] = [dict(lot) for lot in lots]
    assert reversed_lot["id"] == UUID(bought["id"]) and reversed_lot["remaining"] == 0
    assert (lot["amount"], lot["remaining"]) == (1_000_000_000, 1_000_000_000)
    terms = ("kind", "expires_at", "products", "source", "refundable", "revenue_treatment", "price_per_credit")
    terms += ("currency",)
    assert [lot[name] for name in terms] == [reversed_lot[name] for name in terms]
    assert reversed_lot["expires_at"] is not None and reversed_lot["products"] == ["sms.message"]
    restores = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2",
        UUID(org.org), f"refund:{row['id']}:restore",
    )  # fmt: skip
    assert restores == 1
    assert len(refunds_in_stripe(stripe, payment["paymentIntentId"])) == 1  # the dashboard's alone
