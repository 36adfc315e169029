"""Auto-recharge on the jobs worker's own pool: several organizations crossing at once are all
charged by one sweep on a pool of exactly `job_pool_size_max` connections, and a crossing is decided
on one connection (the decision never waits for a second one while it holds the first)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from jobs.recharge import sweep_recharges
from ledger import constants
from ledger.store.pool import create_pool
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.payments_support import jobs_context
from tests.recharge_setup import funded, intents_of, recharges, set_auto_recharge, use, with_card
from tests.stripe_fake import CARD_OK, FakeStripe

SETTINGS = {"enabled": True, "threshold": "50", "pack": "cheddar-50", "monthlyCap": "600"}


@asynccontextmanager
async def small_pool(service: Service, size: int) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(service.settings.database_url, size_max=size)
    try:
        yield pool
    finally:
        await pool.close()


async def test_organizations_crossing_at_once_are_all_recharged_on_a_pool_of_job_pool_size_max(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    assert constants.job_pool_size_max >= constants.recharge_concurrency + 4  # the other crons' share
    orgs: list[Ledger] = list(await asyncio.gather(*(funded(paying_service, "60") for _ in range(6))))
    async with jobs_context(paying_service, pool) as ctx:
        customers = await asyncio.gather(*(with_card(ctx, stripe, org.org, CARD_OK) for org in orgs))
        await asyncio.gather(*(set_auto_recharge(paying_service, org.org, **SETTINGS) for org in orgs))
        await asyncio.gather(*(use(org, 6) for org in orgs))  # 60 -> 48 each: six crossings at once
        async with small_pool(paying_service, constants.job_pool_size_max) as jobs_pool:
            handled = await asyncio.wait_for(sweep_recharges({**ctx, "pool": jobs_pool}), 30)
    assert handled == 6
    for org, customer in zip(orgs, customers, strict=True):
        assert [row["status"] for row in await recharges(pool, org.org)] == ["succeeded"]
        assert len(intents_of(stripe, customer)) == 1
        assert (await org.balance())["total"] == "98"


async def test_a_crossing_is_decided_on_a_single_connection(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    # No card: the decision (settings, month's charges, the pack for the plan, the crossing's
    # state) and the failed charge need one connection at a time.
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        await set_auto_recharge(paying_service, org.org, **SETTINGS)
        await use(org, 6)
        async with small_pool(paying_service, 1) as one:
            assert await asyncio.wait_for(sweep_recharges({**ctx, "pool": one}), 15) == 1
    [row] = await recharges(pool, org.org)
    assert (row["status"], row["payment_id"]) == ("failed", None)
    assert "no default" in row["detail"]
