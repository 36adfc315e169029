"""The recharge wake-up survives losing its connection (it listens again and catches up on what was
written meanwhile), and the jobs worker starts and stops it with itself."""

from __future__ import annotations

import asyncpg
import redis.asyncio as redis

from jobs.recharge import start_recharge_listener, stop_recharge_listener
from jobs.worker import shutdown, startup
from tests.conftest import Service
from tests.payments_support import jobs_context
from tests.recharge_setup import eventually, funded, recharges, set_auto_recharge, use, with_card
from tests.stripe_fake import CARD_OK, FakeStripe

_LISTENING = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%credit_ledger_recharge%' AND pid <> pg_backend_pid()"
)


async def test_a_lost_listening_connection_is_opened_again_and_misses_nothing(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, org.org, CARD_OK)
        await set_auto_recharge(paying_service, org.org, enabled=True, threshold="50", pack="cheddar-50",
                                monthlyCap="300")  # fmt: skip
        await start_recharge_listener(ctx)
        try:
            await eventually(lambda: _listening(pool))
            [pid] = [row["pid"] for row in await pool.fetch(_LISTENING)]
            assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
            await use(org, 6)  # crossed while (perhaps) nobody listens
            await eventually(lambda: _succeeded(pool, org.org), within_s=5.0)
            await eventually(lambda: _listening(pool))  # listening again, on a new connection
            assert [row["pid"] for row in await pool.fetch(_LISTENING)] != [pid]
        finally:
            await stop_recharge_listener(ctx)
    assert not await _listening(pool)


async def test_the_jobs_worker_starts_and_stops_the_listener(paying_service: Service, pool: asyncpg.Pool) -> None:
    client = redis.Redis.from_url(paying_service.settings.redis_url)
    ctx: dict[str, object] = {"redis": client}
    try:
        await startup(ctx, paying_service.settings)
        assert "recharge_listener" in ctx
        await eventually(lambda: _listening(pool))
        await shutdown(ctx)
        assert "recharge_listener" not in ctx
        assert not await _listening(pool)
    finally:
        gateway = ctx.get("gateway")
        if gateway is not None:
            await gateway.close()  # type: ignore[attr-defined]
        await client.aclose()


async def _listening(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetch(_LISTENING))


async def _succeeded(pool: asyncpg.Pool, org: str) -> bool:
    return [row["status"] for row in await recharges(pool, org)] == ["succeeded"]
