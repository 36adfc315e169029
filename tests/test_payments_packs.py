"""Buying credit packs through the real service and localstripe: credits are granted once, only once
paid, however many of the three roads (the answer, the webhook, the reconciliation poll) arrive and
in whatever order; a retried purchase finds its payment; the surcharge and the plan's offer hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from jobs.payments import reconcile_stripe
from ledger.payments.charges import ChargeRequest, charge
from ledger.payments.context import PaymentContext
from ledger.payments.packs import pack_charge
from ledger.payments.purchases import request_key
from ledger.payments.store import Payment, PaymentStatus, Purpose, insert_payment, payment_by_id
from ledger.store.catalog_versions import load_catalog
from tests.conftest import Service
from tests.payments_support import jobs_context, new_organization, pay, purchased_lots, stripe_intents, until
from tests.stripe_fake import CARD_OK, FakeStripe

CREDIT = 1_000_000
BOUGHT = """
payment { id status purpose pack credits creditsGranted declineCode clientSecret nextActionType paymentIntentId
          money { value minorUnits currency } createdAt succeededAt }
creditsGranted
"""


async def _with_card(service: Service, pool: asyncpg.Pool, stripe: FakeStripe) -> tuple[uuid.UUID, str]:
    org = await new_organization(pool)
    card = stripe.card(CARD_OK)
    attached = await pay(service, "attachPaymentMethod", "id brand last4 expMonth expYear isDefault",
                         organizationId=str(org), paymentMethodId=card)  # fmt: skip
    assert attached == {
        "id": card,
        "brand": "visa",
        "last4": "4242",
        "expMonth": 12,
        "expYear": 2034,
        "isDefault": True,
    }
    return org, card


async def _applied(pool: asyncpg.Pool, intent: str, via: str) -> bool:
    found = await pool.fetchval(
        "SELECT count(*) FROM stripe_events WHERE type = 'payment_intent.succeeded' AND applied_at IS NOT NULL"
        " AND payload -> 'data' -> 'object' ->> 'id' = $1 AND received_via = $2",
        intent, via,
    )  # fmt: skip
    return bool(found)


async def test_a_pack_is_granted_once_when_the_answer_the_webhook_and_the_poll_all_arrive(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, _ = await _with_card(paying_service, pool, stripe)
    bought = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="brightmove-sms-1000",
                       idempotencyKey="sms-1")  # fmt: skip
    assert "codes" not in bought, bought
    payment = bought["payment"]
    assert (payment["status"], payment["purpose"], payment["pack"], bought["creditsGranted"]) == (
        "SUCCEEDED", "PACK", "brightmove-sms-1000", "1000")  # fmt: skip
    assert payment["money"] == {"value": "40.00", "minorUnits": "4000", "currency": "USD"}
    intent = payment["paymentIntentId"]
    await until(lambda: _applied(pool, intent, "webhook"))
    # The poll finds the same events (stored once, by id); and as if a crash had lost the webhook's
    # applying, the event is applied again by the reconciliation: it settles the same intent again.
    await pool.execute(
        "UPDATE stripe_events SET applied_at = NULL WHERE payload -> 'data' -> 'object' ->> 'id' = $1", intent
    )
    async with jobs_context(paying_service) as ctx:
        await reconcile_stripe(ctx)
        await reconcile_stripe(ctx)
    assert await _applied(pool, intent, "webhook")
    [lot] = await purchased_lots(pool, org)
    assert (lot["amount"], lot["remaining"], lot["source"], lot["refundable"]) == (1000 * CREDIT, 1000 * CREDIT,
                                                                                 "payment", True)  # fmt: skip
    assert (lot["price_per_credit"], lot["currency"], lot["products"]) == (Decimal("0.04"), "USD", ["sms.message"])
    created = datetime.fromisoformat(payment["createdAt"])
    assert lot["expires_at"] == created + timedelta(days=30)
    charges = await pool.fetch(
        "SELECT kind, amount, currency, idempotency_key FROM billing_charges WHERE org_id = $1", org
    )
    assert [tuple(row) for row in charges] == [("pack", Decimal("40.00"), "USD", f"payment:{intent}")]
    journaled = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2", org, f"payment:{intent}"
    )
    assert journaled == 1
    events = await pool.fetch(
        "SELECT type, received_via FROM stripe_events WHERE payload -> 'data' -> 'object' ->> 'id' = $1", intent
    )
    assert [(row["type"], row["received_via"]) for row in events] == [("payment_intent.succeeded", "webhook")]
    listed = await paying_service.graphql(
        "query($org: ID!) { payments(organizationId: $org) { id status creditsGranted } }", org=str(org)
    )
    assert listed["data"]["payments"] == [{"id": payment["id"], "status": "SUCCEEDED", "creditsGranted": "1000"}]


async def test_the_poll_alone_settles_a_payment_whose_answer_was_lost(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    """A process that died after Stripe made the intent and before it recorded the answer, with no
    webhook: the poll's event names the payment (metadata) and grants it; a retry of the request
    then answers that payment and makes no second intent."""
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")  # webhooks go nowhere
    org, card = await _with_card(paying_service, pool, stripe)
    catalog = await load_catalog(pool)
    pack = catalog.pack_at("cheddar-50", datetime.now(UTC))
    assert pack is not None
    request = pack_charge(pack, organization_id=org, request_key=request_key("lost-1"), payment_method_id=card,
                          off_session=False)  # fmt: skip
    async with jobs_context(paying_service) as jobs:
        ctx = PaymentContext(jobs["pool"], jobs["gateway"], jobs["effects"], datetime.now(UTC))
        started = await insert_payment(pool, _creating(request, card, ctx.now))
        assert started is not None
        customer = await pool.fetchval("SELECT customer_id FROM stripe_customers WHERE org_id = $1", org)
        intent = await ctx.gateway.create_payment_intent(  # what `charge` sent before it "died"
            customer=customer, payment_method=card, amount=request.amount, currency="USD", off_session=False,
            idempotency_key=f"payment:{started.id}",
            metadata={"payment_id": str(started.id), "org": str(org), "purpose": "pack"},
        )  # fmt: skip
        assert intent.status.value == "succeeded"
        assert await purchased_lots(pool, org) == []  # not paid as far as we know: nothing granted
        await reconcile_stripe(jobs)
        settled = await payment_by_id(pool, started.id)
        assert settled is not None and settled.status is PaymentStatus.SUCCEEDED
        assert (settled.payment_intent_id, settled.lot_id is not None) == (intent.id, True)
        assert await _applied(pool, intent.id, "poll")
        retried = await charge(ctx, request)
    assert (retried.id, retried.lot_id) == (started.id, settled.lot_id)
    [lot] = await purchased_lots(pool, org)
    assert (lot["amount"], lot["price_per_credit"], lot["expires_at"]) == (50 * CREDIT, Decimal(3), None)
    assert [i["id"] for i in await stripe_intents(stripe)] == [intent.id]


def _creating(request: ChargeRequest, card: str, now: datetime) -> Payment:
    """The payments row `charge` writes first."""
    return Payment(
        id=uuid.uuid4(), organization_id=request.organization_id, purpose=Purpose.PACK, status=PaymentStatus.CREATING,
        amount=request.amount, currency=request.currency, payment_intent_id=None, decline_code=None,
        failure_message=None, credits=request.credits, lot_id=None, grant_transaction_id=None, invoice_id=None,
        pack_key=request.pack_key, created_at=now, succeeded_at=None, refunded_amount=0,
        request_key=request.request_key, price_per_credit=request.price_per_credit, payment_method_id=card,
    )  # fmt: skip


async def test_a_retried_purchase_answers_the_same_payment_and_makes_one_intent(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, _ = await _with_card(paying_service, pool, stripe)
    first = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                      idempotencyKey="c20")  # fmt: skip
    again = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                      idempotencyKey="c20")  # fmt: skip
    assert again["payment"]["id"] == first["payment"]["id"] and again["creditsGranted"] == "20"
    other = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-50",
                      idempotencyKey="c20")  # fmt: skip
    assert other["codes"] == ["IDEMPOTENCY_CONFLICT"]
    assert len(await stripe_intents(stripe)) == 1
    assert [lot["amount"] for lot in await purchased_lots(pool, org)] == [20 * CREDIT]


async def test_the_surcharge_and_the_plans_a_pack_is_offered_to(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, _ = await _with_card(paying_service, pool, stripe)
    refused = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="act3-out-of-credit",
                        idempotencyKey="ooc")  # fmt: skip
    assert refused["codes"] == ["INVALID_INPUT"] and "not offered" in refused["errors"][0]["message"]
    for pack, code in (("cheddar-signup", "INVALID_INPUT"), ("no-such-pack", "NOT_FOUND")):
        answer = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack=pack,
                           idempotencyKey=pack)  # fmt: skip
        assert answer["codes"] == [code], pack
    subscribed = await paying_service.graphql(
        'mutation($org: ID!) { subscribe(input: {organizationId: $org, plan: "act3-creator", idempotencyKey: "s"}) '
        "{ id } }", org=str(org),
    )  # fmt: skip
    assert "errors" not in subscribed, subscribed
    bought = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="act3-out-of-credit",
                       idempotencyKey="ooc")  # fmt: skip
    assert bought["payment"]["money"] == {"value": "11.50", "minorUnits": "1150", "currency": "USD"}
    [lot] = await purchased_lots(pool, org)
    assert (lot["amount"], lot["price_per_credit"]) == (10_000 * CREDIT, Decimal("0.00115"))
    assert await stripe_intents(stripe) and (await stripe_intents(stripe))[0]["amount"] == 1150
