"""Stripe's events in, whatever they hold: a verified event that is not one we can store is 400 (and
stored nothing), one with a NUL is stored without it, a future-dated signature is refused; the poll
stores what PostgreSQL cannot hold as is and carries on; and charging and applying an event never
need a second pool connection while holding one (a pool of one connection does them)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis

from ledger.billing.catalog import Catalog
from ledger.payments.charges import ChargeRequest, Purpose, charge
from ledger.payments.events import event_view
from ledger.payments.inbox import apply_stored, receive
from ledger.payments.methods import attach_payment_method
from ledger.payments.reconcile import reconcile
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from tests.conftest import Service
from tests.payments_support import new_organization, payment_context, purchased_lots
from tests.stripe_fake import CARD_OK, FakeStripe
from tests.test_payments_webhooks import signed

CREDIT = 1_000_000


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


async def test_odd_verified_events_are_refused_and_a_nul_is_stored_without_it(
    paying_service: Service, pool: asyncpg.Pool
) -> None:
    now = int(time.time())
    good = {"object": "event", "type": "customer.created", "created": now, "data": {"object": {"id": "cus_x"}}}
    odd = [
        [1, 2],
        "an event",
        {**good, "id": "evt_no_type", "type": None},
        {"id": "evt_no_created", "type": "customer.created"},
        {**good, "id": "evt_far", "created": 10**30},
        {**good, "id": "evt_words", "created": "yesterday"},
        {**good, "id": "evt_" + "x" * 300},
    ]
    for value in odd:
        body = _body(value)
        answer = await paying_service.client.post("/stripe/webhook", content=body, headers=signed(body))
        assert answer.status_code == 400, (value, answer.text)
    body = _body({**good, "id": "evt_future"})
    future = await paying_service.client.post("/stripe/webhook", content=body, headers=signed(body, at=now + 3600))
    assert future.status_code == 400
    nul = {**good, "id": "evt_nul", "data": {"object": {"id": "cus_x", "name": "Ann\u0000", "note": "\ud800!"}}}
    body = _body(nul)
    stored = await paying_service.client.post("/stripe/webhook", content=body, headers=signed(body))
    assert stored.status_code == 200, stored.text
    payload = await pool.fetchval("SELECT payload FROM stripe_events WHERE id = 'evt_nul'")
    assert payload["data"]["object"]["name"] == "Ann" and payload["data"]["object"]["note"].endswith("!")
    assert await pool.fetchval("SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_no%' OR id = 'evt_far'") == 0


async def test_the_poll_stores_an_event_postgresql_cannot_hold_as_is_and_goes_on(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")
    async with httpx.AsyncClient(base_url=stripe.url, auth=("sk_test_fixture", ""), timeout=10) as client:
        made = await client.post("/v1/customers", data={"name": "Ann\u0000", "email": "ann@example.com"})
        made.raise_for_status()
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        await reconcile(ctx)
    names = await pool.fetch(
        "SELECT payload -> 'data' -> 'object' ->> 'name' AS name FROM stripe_events"
        " WHERE type = 'customer.created' AND payload -> 'data' -> 'object' ->> 'id' = $1",
        made.json()["id"],
    )
    assert [row["name"] for row in names] == ["Ann"]
    assert await pool.fetchval("SELECT created FROM stripe_cursors WHERE name = 'events'") is not None


async def test_a_pool_of_one_connection_charges_and_applies_events(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")
    org = await new_organization(pool)
    small = await create_pool(settings.database_url, size_max=1)
    try:
        async with payment_context(pool, redis_client, settings, stripe) as ctx:
            card = (await attach_payment_method(ctx, org, stripe.card(CARD_OK), True)).method.id
            one = replace(ctx, pool=small)
            request = ChargeRequest(
                organization_id=org, purpose=Purpose.PACK, request_key="pack:small", amount=6000, currency="USD",
                off_session=False, payment_method_id=card, pack_key="cheddar-20", credits=20 * CREDIT,
                price_per_credit=Decimal(3),
            )  # fmt: skip
            paid = await asyncio.wait_for(charge(one, request), 30)
            assert paid.status.value == "succeeded" and paid.lot_id is not None
            page = await ctx.gateway.list_events(int(time.time()) - 120)
            [succeeded] = [
                e
                for e in page.events
                if e.type == "payment_intent.succeeded" and e.object["id"] == paid.payment_intent_id
            ]
            assert await receive(pool, succeeded, "poll", ctx.now)
            assert await asyncio.wait_for(apply_stored(one, succeeded.id), 30)
            assert not await apply_stored(one, succeeded.id)  # applied once
    finally:
        await small.close()
    assert [lot["amount"] for lot in await purchased_lots(pool, org)] == [20 * CREDIT]


async def test_an_event_claimed_by_an_applier_is_left_to_it_until_its_claim_lapses(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")
    now = int(time.time())
    event = event_view({"id": "evt_claimed", "type": "customer.created", "created": now, "data": {"object": {}}})
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        assert await receive(pool, event, "webhook", ctx.now)
        await pool.execute(
            "UPDATE stripe_events SET claimed_until = now() + interval '1 minute' WHERE id = $1", event.id
        )
        assert not await apply_stored(ctx, event.id)  # another applier has it
        await pool.execute(
            "UPDATE stripe_events SET claimed_until = now() - interval '1 second' WHERE id = $1", event.id
        )
        assert await apply_stored(ctx, event.id)  # that applier died: its claim lapsed
    row = await pool.fetchrow("SELECT applied_at, claimed_until FROM stripe_events WHERE id = $1", event.id)
    assert row["applied_at"] is not None and row["claimed_until"] is None
