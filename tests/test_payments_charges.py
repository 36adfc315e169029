"""`charge` against localstripe, the real PostgreSQL, Redis and a ledger worker: a good card pays
and grants the pack once, a declining card fails with its decline code and grants nothing, a card
that needs authentication waits for it, and a retried request finds its payment."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import asyncpg
import redis.asyncio as redis

from ledger.billing.catalog import Catalog
from ledger.payments.charges import charge
from ledger.payments.customers import ensure_customer
from ledger.payments.gateway import IntentStatus
from ledger.payments.packs import pack_charge, pack_for_sale
from ledger.payments.settle import settle_intent
from ledger.payments.store import PaymentStatus
from ledger.runtime.settings import Settings
from tests.payments_support import new_organization, payment_context, purchased_lots, stripe_intents
from tests.stripe_fake import CARD_3DS, CARD_CHARGES_FAIL, CARD_OK, FakeStripe

CREDIT = 1_000_000


async def test_a_good_card_pays_and_grants_the_pack_once(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        org = await new_organization(pool)
        customer = await ensure_customer(ctx, org)
        card = stripe.card(CARD_OK)
        await ctx.gateway.attach_payment_method(customer, card)
        pack = pack_for_sale(catalog, "brightmove-sms-1000", None, ctx.now)
        request = pack_charge(pack, organization_id=org, request_key="buy-1", payment_method_id=card, off_session=False)
        assert (request.amount, request.currency, request.price_per_credit) == (4000, "USD", Decimal("0.04"))
        paid = await charge(ctx, request)
        again = await charge(ctx, request)
        assert paid.payment_intent_id is not None
        # Every road settles the same intent; a late failure (an event older than the success) never undoes it.
        succeeded = await ctx.gateway.retrieve_payment_intent(paid.payment_intent_id)
        for via in ("webhook", "poll"):
            assert (await settle_intent(ctx, succeeded, via)) == replace(paid, client_secret=None)
        late = replace(succeeded, status=IntentStatus.FAILED, decline_code="card_declined")
        kept = await settle_intent(ctx, late, "webhook")
        assert kept is not None and (kept.status, kept.decline_code, kept.lot_id) == (PaymentStatus.SUCCEEDED, None,
                                                                                      paid.lot_id)  # fmt: skip
    assert paid.status is PaymentStatus.SUCCEEDED and paid.payment_intent_id is not None
    assert again.id == paid.id and again.lot_id == paid.lot_id is not None
    [lot] = await purchased_lots(pool, org)
    assert lot["id"] == paid.lot_id
    assert (lot["amount"], lot["source"], lot["refundable"], lot["currency"]) == (1000 * CREDIT, "payment", True, "USD")
    assert lot["price_per_credit"] == Decimal("0.04") and lot["products"] == ["sms.message"]
    assert lot["expires_at"] == paid.created_at + timedelta(days=30)
    charges = await pool.fetch("SELECT kind, amount, idempotency_key FROM billing_charges WHERE org_id = $1", org)
    assert [tuple(row) for row in charges] == [("pack", Decimal("40.00"), f"payment:{paid.payment_intent_id}")]
    intents = await stripe_intents(stripe)
    assert [intent["id"] for intent in intents] == [paid.payment_intent_id]
    metadata = {"payment_id": str(paid.id), "org": str(org), "purpose": "pack"}
    assert intents[0]["metadata"] == {**metadata, "description": "1,000 SMS (brightmove-sms-1000)"}


async def test_a_declining_card_fails_with_its_code_and_grants_nothing(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        org = await new_organization(pool)
        customer = await ensure_customer(ctx, org)
        card = stripe.card(CARD_CHARGES_FAIL)
        await ctx.gateway.attach_payment_method(customer, card)
        await ctx.gateway.set_default_payment_method(customer, card)
        pack = pack_for_sale(catalog, "cheddar-20", None, ctx.now)
        request = pack_charge(pack, organization_id=org, request_key="buy-1", payment_method_id=None, off_session=True)
        failed = await charge(ctx, request)
        again = await charge(ctx, request)
    assert (failed.status, failed.decline_code, failed.lot_id) == (PaymentStatus.FAILED, "card_declined", None)
    assert again.id == failed.id and again.status is PaymentStatus.FAILED
    assert await purchased_lots(pool, org) == []
    assert await pool.fetchval("SELECT count(*) FROM billing_charges WHERE org_id = $1", org) == 0


async def test_a_card_needing_authentication_waits_for_it(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        org = await new_organization(pool)
        customer = await ensure_customer(ctx, org)
        assert await ensure_customer(ctx, org) == customer
        card = stripe.card(CARD_3DS)
        await ctx.gateway.attach_payment_method(customer, card)
        pack = pack_for_sale(catalog, "cheddar-20", None, ctx.now)
        request = pack_charge(pack, organization_id=org, request_key="buy-1", payment_method_id=card, off_session=False)
        waiting = await charge(ctx, request)
        again = await charge(ctx, request)
    assert waiting.status is PaymentStatus.REQUIRES_ACTION and waiting.client_secret
    assert waiting.next_action_type == "use_stripe_sdk"
    assert again.id == waiting.id and again.payment_intent_id == waiting.payment_intent_id and again.client_secret
    assert await purchased_lots(pool, org) == []
