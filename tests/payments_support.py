"""Payments' test helpers: a `PaymentContext` on the real PostgreSQL, Redis, a ledger worker and
localstripe, and reads of what a payment left behind."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis

from ledger.directory.organizations import create_organization
from ledger.payments.context import PaymentContext
from ledger.payments.gateway import Gateway, gateway_from
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from ledger.subscriptions.effects import LedgerEffects
from tests.conftest import Service, running_worker
from tests.stripe_fake import FakeStripe
from tests.subscription_calls import mailbox_of


@contextlib.asynccontextmanager
async def payment_context(
    pool: asyncpg.Pool, client: redis.Redis, settings: Settings, stripe: FakeStripe
) -> AsyncIterator[PaymentContext]:
    """Payments as the service makes them, with a ledger worker running, at the wall clock's now."""
    paying = stripe.settings(settings)
    gateway = Gateway(paying.stripe_api_key, paying.stripe_api_base)
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, settings.partition_count, hub)
    await mailbox.start()
    try:
        async with running_worker(pool, settings):
            yield PaymentContext(pool, gateway, LedgerEffects(mailbox), datetime.now(UTC))
    finally:
        await hub.stop()
        await gateway.close()


async def new_organization(pool: asyncpg.Pool, name: str = "Buyer") -> uuid.UUID:
    org = uuid.uuid4()
    await create_organization(pool, org, f"{name} {org}")
    return org


_PURCHASED = """
SELECT id, amount, remaining, expires_at, products, source, refundable, price_per_credit, currency
FROM credit_lots WHERE org_id = $1 AND kind = 'purchased' ORDER BY created_at
"""


async def purchased_lots(pool: asyncpg.Pool, org: uuid.UUID) -> list[dict[str, Any]]:
    return [dict(row) for row in await pool.fetch(_PURCHASED, org)]


async def stripe_intents(stripe: FakeStripe) -> list[dict[str, Any]]:
    """Every PaymentIntent localstripe holds."""
    async with httpx.AsyncClient(base_url=stripe.url, auth=("sk_test_fixture", ""), timeout=10) as client:
        response = await client.get("/v1/payment_intents", params={"limit": 100})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def pay(
    service: Service, mutation: str, selection: str, *, credentials: str | None = None, **input: Any
) -> dict[str, Any]:
    """Run a payments mutation; its data, or {"codes": [...], "errors": [...]}."""
    name = {"setDefaultPaymentMethod": "PaymentMethod", "detachPaymentMethod": "PaymentMethod"}.get(
        mutation, mutation[0].upper() + mutation[1:]
    )
    body = await service.graphql(
        f"mutation($input: {name}Input!) {{ {mutation}(input: $input) {{ {selection} }} }}",
        credentials=credentials, input=input,
    )  # fmt: skip
    if body.get("errors"):
        return {"codes": [error["extensions"]["code"] for error in body["errors"]], "errors": body["errors"]}
    result: dict[str, Any] = body["data"][mutation]
    return result


@contextlib.asynccontextmanager
async def jobs_context(
    service: Service, pool: asyncpg.Pool | None = None, *, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """What the jobs worker gives its jobs (pool, effects, gateway, settings, clock), for calling one
    directly: on `pool` if given (the caller closes it), else on a pool of its own."""
    own = await create_pool(service.settings.database_url) if pool is None else None
    gateway = gateway_from(service.settings)
    try:
        async with mailbox_of(service) as mailbox:
            yield {"pool": pool or own, "effects": LedgerEffects(mailbox), "gateway": gateway,
                   "settings": service.settings, "clock": clock or (lambda: datetime.now(UTC))}  # fmt: skip
    finally:
        if gateway is not None:
            await gateway.close()
        if own is not None:
            await own.close()


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Wait for `condition` (what the service does after its answer, e.g. applying a webhook)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
