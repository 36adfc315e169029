"""The catalog's versions in PostgreSQL: saved whole or not at all, a second save of the same
catalog changes nothing, and a stored version never changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from ledger.billing.catalog import Catalog, Interval, Plan, RateVersion
from ledger.core.errors import CatalogInvalid
from ledger.core.money import MicroCredits
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
        later = replace(SELL, effective_at=datetime(2026, 6, 1, tzinfo=UTC), credits=MicroCredits(1))
        # A refused save leaves nothing behind, even the parts that were new.
        with pytest.raises(CatalogInvalid):
            await save_catalog(
                connection, replace(changed, plans={"sell": (replace(SELL, credits=MicroCredits(1)), later)})
            )
        assert (await save_catalog(connection, replace(CATALOG, plans={"sell": (SELL, later)}))).added == 1
        loaded = await load_catalog(connection)
    assert loaded.plans["sell"] == (SELL, later)
    assert loaded.plan_at("sell", datetime(2026, 5, 31, tzinfo=UTC)) == SELL
    assert loaded.plan_at("sell", datetime(2026, 6, 1, tzinfo=UTC)) == later
    assert loaded.rate_at("ai.tokens", JAN, {"model": "gpt-4o", "operation": "input"}) == RATE
    assert loaded.rate_at("ai.tokens", JAN, {"model": "claude"}) is None
