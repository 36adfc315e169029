"""The reconciliation recovering what went wrong between Stripe and us: an intent Stripe made whose
answer was lost is adopted (never made twice), a backlog of events larger than a run's cap is read
to its end over several runs, and a paid grant the ledger refuses is re-sent a bounded number of
times and then alerted once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from ledger import constants
from ledger.billing.catalog import Catalog
from ledger.payments.context import PaymentContext
from ledger.payments.methods import attach_payment_method
from ledger.payments.reconcile import poll_events, reconcile
from ledger.payments.store import Payment, PaymentStatus, Purpose, insert_payment, payment_by_id, record_outcome
from ledger.runtime.settings import Settings
from tests.payments_support import new_organization, payment_context, purchased_lots, stripe_intents
from tests.stripe_fake import CARD_OK, FakeStripe

CREDIT = 1_000_000


@contextlib.asynccontextmanager
async def _paying(
    pool: asyncpg.Pool, client: redis.Redis, settings: Settings, stripe: FakeStripe
) -> AsyncIterator[tuple[PaymentContext, uuid.UUID, str]]:
    """An organization with a card, its webhooks lost, and the poll's cursor past its events (as when
    Stripe lists an event late): only the re-check of payments can find what happened."""
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")
    org = await new_organization(pool)
    async with payment_context(pool, client, settings, stripe) as ctx:
        card = (await attach_payment_method(ctx, org, stripe.card(CARD_OK), True)).method.id
        ahead = int((ctx.now + timedelta(hours=1)).timestamp())
        await pool.execute("INSERT INTO stripe_cursors (name, created) VALUES ('events', $1)", ahead)
        yield ctx, org, card


async def _crashed(ctx: PaymentContext, org: uuid.UUID, card: str, credits: int = 20 * CREDIT) -> tuple[Payment, str]:
    """A payment whose intent Stripe made, but whose answer never reached its row."""
    payment = await insert_payment(ctx.pool, Payment(
        id=uuid.uuid4(), organization_id=org, purpose=Purpose.PACK, status=PaymentStatus.CREATING, amount=6000,
        currency="USD", payment_intent_id=None, decline_code=None, failure_message=None, credits=credits,
        lot_id=None, grant_transaction_id=None, invoice_id=None, pack_key="cheddar-20",
        created_at=ctx.now - timedelta(minutes=5), succeeded_at=None, refunded_amount=0,
        request_key=f"pack:{uuid.uuid4()}", payment_method_id=card,
    ))  # fmt: skip
    assert payment is not None
    customer = await ctx.pool.fetchval("SELECT customer_id FROM stripe_customers WHERE org_id = $1", org)
    intent = await ctx.gateway.create_payment_intent(
        customer=customer, payment_method=card, amount=6000, currency="USD", off_session=False,
        idempotency_key=f"payment:{payment.id}",
        metadata={"payment_id": str(payment.id), "org": str(org), "purpose": "pack"},
    )  # fmt: skip
    return payment, intent.id


async def test_an_intent_made_before_a_crash_is_adopted_not_made_again(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with _paying(pool, redis_client, settings, stripe) as (ctx, org, card):
        payment, intent_id = await _crashed(ctx, org, card)
        await reconcile(ctx)
        await reconcile(ctx)
    intents = [i["id"] for i in await stripe_intents(stripe) if i["metadata"].get("payment_id") == str(payment.id)]
    assert intents == [intent_id]
    adopted = await payment_by_id(pool, payment.id)
    assert adopted is not None and (adopted.status, adopted.payment_intent_id) == (PaymentStatus.SUCCEEDED, intent_id)
    assert [lot["amount"] for lot in await purchased_lots(pool, org)] == [20 * CREDIT]


async def test_a_paid_grant_the_ledger_refuses_is_retried_a_few_times_then_alerted_once(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with _paying(pool, redis_client, settings, stripe) as (ctx, org, card):
        # More credits than the ledger grants at once (its bounds refuse the command).
        payment, intent_id = await _crashed(ctx, org, card, credits=5 * 10**18)
        await record_outcome(pool, payment.id, intent_id, PaymentStatus.SUCCEEDED, None, None, ctx.now)
        for _ in range(constants.payment_grant_attempts_max + 3):
            await reconcile(ctx)
    attempts = await pool.fetchval("SELECT grant_attempts FROM payments WHERE id = $1", payment.id)
    assert attempts == constants.payment_grant_attempts_max
    alerts = await pool.fetch("SELECT kind, state, name FROM alert_events WHERE org_id = $1", org)
    assert [(a["kind"], a["state"]) for a in alerts] == [("payment_failed", "triggered")]
    assert alerts[0]["name"].startswith(f"paid but not granted: payment {payment.id}")
    assert await purchased_lots(pool, org) == []


async def test_a_backlog_larger_than_a_run_is_read_to_its_end(
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    settings: Settings,
    stripe: FakeStripe,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(constants, "stripe_page_size_max", 2)
    monkeypatch.setattr(constants, "stripe_events_per_run_max", 2)
    monkeypatch.setattr(constants, "stripe_events_overlap_s", 0)
    made = []
    async with httpx.AsyncClient(base_url=stripe.url, auth=("sk_test_fixture", ""), timeout=10) as client:
        for batch in range(2):  # two seconds apart: the newest are listed first
            if batch:
                await asyncio.sleep(1.2)
            for n in range(3):
                response = await client.post("/v1/customers", data={"name": f"C{batch}{n}"})
                made.append(response.raise_for_status().json()["id"])
    async with payment_context(pool, redis_client, settings, stripe) as ctx:
        for run in range(6):
            await poll_events(replace(ctx, now=ctx.now + timedelta(seconds=run)))
    stored = await pool.fetch(
        "SELECT payload -> 'data' -> 'object' ->> 'id' AS id FROM stripe_events WHERE type = 'customer.created'"
    )
    assert sorted(row["id"] for row in stored) == sorted(made)
    assert (
        await pool.fetchval("SELECT created FROM stripe_cursors WHERE name = 'events'")
        >= int(datetime.now().timestamp()) - 5
    )


async def test_a_crashed_payment_whose_card_stripe_no_longer_knows_ends_failed(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, stripe: FakeStripe, catalog: Catalog
) -> None:
    async with _paying(pool, redis_client, settings, stripe) as (ctx, org, _):
        crashed = await insert_payment(pool, Payment(
            id=uuid.uuid4(), organization_id=org, purpose=Purpose.PACK, status=PaymentStatus.CREATING, amount=6000,
            currency="USD", payment_intent_id=None, decline_code=None, failure_message=None, credits=20 * CREDIT,
            lot_id=None, grant_transaction_id=None, invoice_id=None, pack_key="cheddar-20",
            created_at=ctx.now - timedelta(minutes=5), succeeded_at=None, refunded_amount=0, request_key="pack:gone",
            payment_method_id="pm_gone",
        ))  # fmt: skip
        assert crashed is not None
        await reconcile(ctx)
    ended = await payment_by_id(pool, crashed.id)
    assert ended is not None and (ended.status, ended.decline_code) == (PaymentStatus.FAILED, "refused")
    assert await stripe_intents(stripe) == []
