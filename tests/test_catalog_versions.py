"""The catalog's versions in PostgreSQL: saved whole or not at all, a second save of the same
catalog changes nothing, a stored version never changes, and the product registry follows the
versions in force."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from ledger.billing.catalog import Catalog, Interval, Plan, Product, ProductKind, RateVersion
from ledger.core.errors import CatalogInvalid
from ledger.core.money import MicroCredits
from ledger.store.catalog import Product as RegistryProduct
from ledger.store.catalog import list_products
from ledger.store.catalog_versions import load_catalog, save_catalog

JAN = datetime(2026, 1, 1, tzinfo=UTC)
SELL = Plan("sell", "SELL", JAN, prices={Interval.MONTHLY: Decimal(995)}, credits=MicroCredits(18_000_000_000))
RATE = RateVersion("ai.tokens", JAN, Decimal("0.001"), dimensions={"model": "gpt-4o"})
CATALOG = Catalog(plans={"sell": (SELL,)}, rates={"ai.tokens": (RATE,)})


async def test_a_second_save_changes_nothing_and_a_stored_version_never_changes(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        first = await save_catalog(connection, CATALOG)
        second = await save_catalog(connection, CATALOG)
        assert (first.added, second.added, second.unchanged) == (3, 0, 3)
        changed = replace(CATALOG, plans={"sell": (replace(SELL, credits=MicroCredits(1)),)}, rates={})
        with pytest.raises(CatalogInvalid, match="plan 'sell' already has a version effective 2026-01-01"):
            await save_catalog(connection, changed)
        later = replace(SELL, effective_at=datetime(2027, 6, 1, tzinfo=UTC), credits=MicroCredits(1))
        # A refused save leaves nothing behind, even the parts that were new.
        with pytest.raises(CatalogInvalid):
            await save_catalog(
                connection, replace(changed, plans={"sell": (replace(SELL, credits=MicroCredits(1)), later)})
            )
        assert (await save_catalog(connection, replace(CATALOG, plans={"sell": (SELL, later)}))).added == 1
        loaded = await load_catalog(connection)
    assert loaded.plans["sell"] == (SELL, later)
    assert loaded.plan_at("sell", datetime(2027, 5, 31, tzinfo=UTC)) == SELL
    assert loaded.plan_at("sell", datetime(2027, 6, 1, tzinfo=UTC)) == later
    assert loaded.rate_at("ai.tokens", JAN, {"model": "gpt-4o", "operation": "input"}) == RATE
    assert loaded.rate_at("ai.tokens", JAN, {"model": "claude"}) is None


async def test_a_save_keeps_the_product_registry_at_the_versions_in_force(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    sms = Product("sms", "SMS", ProductKind.USAGE, "message", JAN.replace(year=2000))
    first = RateVersion("sms", now - timedelta(days=2), Decimal(1), overage_price_per_unit=Decimal("0.06"))
    mini = RateVersion("sms", now - timedelta(days=1), Decimal(9), dimensions={"model": "mini"})
    catalog = Catalog(products={"sms": (sms,)}, rates={"sms": (first, mini)})
    async with pool.acquire() as connection:
        await save_catalog(connection, catalog)
        assert await list_products(connection) == [
            RegistryProduct("sms", "SMS", "message", Decimal(1), Decimal("0.06"))
        ]
        row = await connection.fetchrow("SELECT xmin::text AS version FROM products WHERE key = 'sms'")
        await save_catalog(connection, catalog)  # already right: not written again
        assert await connection.fetchval("SELECT xmin::text FROM products WHERE key = 'sms'") == row["version"]
        # A dimensionless version that comes into force later is what the registry shows from then on.
        later = RateVersion("sms", now + timedelta(seconds=1), Decimal(2))
        await save_catalog(connection, replace(catalog, rates={"sms": (first, mini, later)}))
        assert [p.credits_per_unit for p in await list_products(connection)] == [1]
        await asyncio.sleep(1.1)
        assert [p.credits_per_unit for p in await list_products(connection)] == [2]


async def test_a_new_version_of_something_priced_before_takes_effect_now_or_later(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        await save_catalog(connection, CATALOG)
        backdated = replace(RATE, effective_at=datetime(2026, 3, 1, tzinfo=UTC), credits_per_unit=Decimal(2))
        with pytest.raises(CatalogInvalid, match=r"rate 'ai\.tokens': a new version of it must take effect now"):
            await save_catalog(connection, replace(CATALOG, rates={"ai.tokens": (RATE, backdated)}))
        # Something new to the catalog may carry any date: nothing was priced by it.
        newcomer = replace(SELL, key="build", name="BUILD")
        assert (await save_catalog(connection, replace(CATALOG, plans={"build": (newcomer,)}))).added == 1
