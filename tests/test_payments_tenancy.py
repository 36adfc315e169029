"""One organization's cards and payments stay its own: another organization's card (or a card
Stripe does not know) is NOT_FOUND to a purchase and to attaching, before anything is written or
charged; a validly signed event whose intent charged another organization's customer settles nothing."""

from __future__ import annotations

import uuid

import asyncpg

from ledger.payments.gateway import Gateway
from ledger.payments.store import Payment, PaymentStatus, Purpose, insert_payment, payment_by_id
from tests.conftest import Service
from tests.payments_support import new_organization, pay, purchased_lots, stripe_intents, until
from tests.stripe_fake import CARD_OK, FakeStripe
from tests.test_payments_webhooks import event, signed

CREDIT = 1_000_000
METHODS = "query($org: ID!) { paymentMethods(organizationId: $org) { id isDefault } }"


async def _two_organizations(service: Service, pool: asyncpg.Pool, stripe: FakeStripe) -> tuple[
    uuid.UUID, str, uuid.UUID, str
]:  # fmt: skip
    org_a, org_b = await new_organization(pool, "A"), await new_organization(pool, "B")
    card_a, card_b = stripe.card(CARD_OK), stripe.card(CARD_OK)
    for org, card in ((org_a, card_a), (org_b, card_b)):
        attached = await pay(service, "attachPaymentMethod", "isDefault", organizationId=str(org), paymentMethodId=card)
        assert attached == {"isDefault": True}, attached
    return org_a, card_a, org_b, card_b


async def test_another_organizations_card_buys_nothing(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org_a, card_a, org_b, _ = await _two_organizations(paying_service, pool, stripe)
    for card in (card_a, "pm_doesnotexist"):
        stolen = await pay(paying_service, "buyCreditPack", "payment { status }", organizationId=str(org_b),
                           pack="cheddar-20", idempotencyKey=f"steal-{card}", paymentMethodId=card)  # fmt: skip
        assert stolen.get("codes") == ["NOT_FOUND"], stolen
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE org_id = ANY($1)", [org_a, org_b]) == 0
    assert await stripe_intents(stripe) == []
    assert await purchased_lots(pool, org_b) == []
    # Its own card (given, or the default) still buys.
    own = await pay(paying_service, "buyCreditPack", "payment { status }", organizationId=str(org_b),
                    pack="cheddar-20", idempotencyKey="own")  # fmt: skip
    assert own == {"payment": {"status": "SUCCEEDED"}}


async def test_another_organizations_card_cannot_be_attached_or_moved(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org_a, card_a, org_b, card_b = await _two_organizations(paying_service, pool, stripe)
    taken = await pay(paying_service, "attachPaymentMethod", "id isDefault", organizationId=str(org_b),
                      paymentMethodId=card_a, makeDefault=True)  # fmt: skip
    assert taken.get("codes") == ["NOT_FOUND"], taken
    assert (await paying_service.graphql(METHODS, org=str(org_a)))["data"]["paymentMethods"] == [
        {"id": card_a, "isDefault": True}
    ]
    assert (await paying_service.graphql(METHODS, org=str(org_b)))["data"]["paymentMethods"] == [
        {"id": card_b, "isDefault": True}
    ]
    # Attaching one's own card again answers it as it is: still the default.
    again = await pay(paying_service, "attachPaymentMethod", "id isDefault", organizationId=str(org_a),
                      paymentMethodId=card_a)  # fmt: skip
    assert again == {"id": card_a, "isDefault": True}


async def test_an_intent_charging_another_organizations_customer_settles_nothing(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org_a, card_a, org_b, _ = await _two_organizations(paying_service, pool, stripe)
    waiting = await insert_payment(pool, Payment(
        id=uuid.uuid4(), organization_id=org_b, purpose=Purpose.PACK, status=PaymentStatus.CREATING, amount=6000,
        currency="USD", payment_intent_id=None, decline_code=None, failure_message=None, credits=20 * CREDIT,
        lot_id=None, grant_transaction_id=None, invoice_id=None, pack_key="cheddar-20",
        created_at=await pool.fetchval("SELECT now()"), succeeded_at=None, refunded_amount=0, request_key="pack:b",
    ))  # fmt: skip
    assert waiting is not None
    customer_a = await pool.fetchval("SELECT customer_id FROM stripe_customers WHERE org_id = $1", org_a)
    settings = paying_service.settings
    gateway = Gateway(settings.stripe_api_key, settings.stripe_api_base)
    try:  # an intent on A's customer and card whose metadata names B's payment (made in Stripe by anyone)
        intent = await gateway.create_payment_intent(
            customer=customer_a, payment_method=card_a, amount=6000, currency="USD", off_session=True,
            idempotency_key="foreign", metadata={"payment_id": str(waiting.id), "org": str(org_b), "purpose": "pack"},
        )  # fmt: skip
    finally:
        await gateway.close()
    [raw] = [i for i in await stripe_intents(stripe) if i["id"] == intent.id]
    body = event("payment_intent.succeeded", raw, "evt_foreign")
    assert (await _post_webhook(paying_service, body)) == 200
    await until(lambda: _applied(pool, "evt_foreign"))
    after = await payment_by_id(pool, waiting.id)
    assert after is not None and (after.status, after.payment_intent_id) == (PaymentStatus.CREATING, None)
    assert await purchased_lots(pool, org_b) == []


async def _post_webhook(service: Service, body: bytes) -> int:
    return (await service.client.post("/stripe/webhook", content=body, headers=signed(body))).status_code


async def _applied(pool: asyncpg.Pool, event_id: str) -> bool:
    return bool(await pool.fetchval("SELECT applied_at IS NOT NULL FROM stripe_events WHERE id = $1", event_id))
