"""A ledger worker keeps the catalog's rates in memory; a change to the catalog reaches it by
NOTIFY, and with its listener lost it reads the rates every batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from ledger.billing.catalog import Catalog, RateVersion
from ledger.store.catalog_versions import save_catalog
from tests.conftest import Service
from tests.ledger_api import Ledger


async def _new_rate(pool: asyncpg.Pool, credits_per_unit: int) -> None:
    """A new version of sms.message's rate, in force from now."""
    rate = RateVersion("sms.message", datetime.now(UTC), Decimal(credits_per_unit))
    async with pool.acquire() as connection:
        await save_catalog(connection, Catalog(rates={"sms.message": (rate,)}), settings=False)


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_a_catalog_change_reaches_a_warm_worker(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Priced")
    await org.accepted("grantCredits", amount="100")
    first = await org.accepted("recordUsage", product="sms.message", quantity="1")
    assert first["creditsCharged"] == "1"
    rates = service.worker.rates
    assert "sms.message" in rates.card

    await _new_rate(pool, 3)
    await _until(lambda: "sms.message" not in rates.card, "the change was not heard")
    assert (await org.accepted("recordUsage", product="sms.message", quantity="1"))["creditsCharged"] == "3"

    # The listener's connection dies: changes in the meantime go unheard, so every batch reads.
    listener = rates._listener
    assert listener is not None
    await pool.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    await _until(lambda: rates._listener is None, "the lost listener was not noticed")
    await _new_rate(pool, 5)
    assert (await org.accepted("recordUsage", product="sms.message", quantity="1"))["creditsCharged"] == "5"
    await _new_rate(pool, 1)
    assert (await org.accepted("recordUsage", product="sms.message", quantity="1"))["creditsCharged"] == "1"
