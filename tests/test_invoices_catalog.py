"""A plan's Net-N terms through the catalog's store and API: stored and shown, and a catalog stored
before the field existed loads again unchanged (a version never changes, a new default does not
make it look changed)."""

from __future__ import annotations

import asyncpg

from graphql_api.shell.catalog import example_catalog
from ledger.store.catalog_versions import load_catalog, save_catalog
from tests.conftest import Service


async def test_a_version_stored_before_the_field_loads_again_unchanged(pool: asyncpg.Pool) -> None:
    catalog = example_catalog()
    async with pool.acquire() as connection:
        first = await save_catalog(connection, catalog)
        # As a store written before `invoice_terms_days` existed holds its plans.
        stripped = await connection.execute(
            "UPDATE catalog_entries SET body = body - 'invoice_terms_days' "
            "WHERE kind = 'plan' AND body->'invoice_terms_days' = 'null'::jsonb"
        )
        again = await save_catalog(connection, catalog)
        stored = await load_catalog(connection)
    assert stripped == "UPDATE 8"  # every plan but the two on Net-30 terms
    assert (again.added, again.unchanged) == (0, first.added + first.unchanged)
    sell = stored.plan_at("meclabs-sell", catalog.plans["meclabs-sell"][0].effective_at)
    assert sell is not None and sell.invoice_terms_days is None


async def test_the_terms_in_the_catalog_api(service: Service) -> None:
    body = await service.graphql("{ catalog { plans { key current { invoiceTermsDays } } } }")
    terms = {plan["key"]: plan["current"]["invoiceTermsDays"] for plan in body["data"]["catalog"]["plans"]}
    assert terms["meclabs-enterprise"] == 30 and terms["act3-enterprise"] == 30
    assert terms["meclabs-sell"] is None
