"""`credit-ledger demo`: load the example catalog (graphql_api/catalog.toml) and two demo
organizations into a running service and generate usage through its GraphQL API, printing
balances as they move."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx

from graphql_api.shell.catalog import example_catalog, save_catalog_to
from ledger import constants
from ledger.billing.catalog import Catalog, Product
from ledger.directory.api_keys import create_api_key, revoke_api_key
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool

events_per_organization = 25
# Demo data, not catalog: who the demo creates and grants to.
ORGANIZATIONS = (
    {"id": "00000000-0000-4000-8000-00000000a001", "name": "Acme AI", "grant": "6000"},
    {"id": "00000000-0000-4000-8000-00000000a002", "name": "Globex Studio", "grant": "33000"},
)

_CREATE = """
mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id name } }
"""
_GRANT = """
mutation($input: GrantCreditsInput!) { grantCredits(input: $input) { status balanceAfter } }
"""
_USAGE = """
mutation($input: RecordUsageInput!) {
  recordUsage(input: $input) { status creditsCharged balanceAfter rejection { code } }
}
"""


def priced_products(catalog: Catalog) -> list[Product]:
    """The products usage can be recorded for: those with a rate."""
    return [versions[-1] for key, versions in sorted(catalog.products.items()) if key in catalog.rates]


async def _call(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


async def run_demo(settings: Settings) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    catalog = example_catalog()
    pool = await create_pool(settings.database_url)
    try:
        saved = await save_catalog_to(pool, catalog)
        print(f"catalog.toml: {saved.added} versions added, {saved.unchanged} unchanged")
        # The demo acts as the platform: with the operator's admin key, or a key of its own, revoked after.
        admin_key, demo_key = settings.admin_key, None
        if not admin_key:
            demo_key, admin_key = await create_api_key(pool, name="demo", scope="admin")
        try:
            await _run(settings, catalog, admin_key)
        finally:
            if demo_key is not None:
                await revoke_api_key(pool, demo_key.id)
    finally:
        await pool.close()


async def _run(settings: Settings, catalog: Catalog, admin_key: str) -> None:
    products = priced_products(catalog)
    print(f"{len(products)} products to use, {len(catalog.plans)} plans, {len(catalog.packs)} packs")
    base_url = f"http://{settings.host}:{settings.port}"
    randomness = random.Random(7)
    headers = {"authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        base_url=base_url, timeout=constants.demo_request_timeout_s, headers=headers
    ) as client:
        try:
            await client.get("/healthz")
        except httpx.TransportError:
            raise SystemExit(f"no service at {base_url}: start it with `credit-ledger serve` first") from None
        for org in ORGANIZATIONS:
            await _call(client, _CREATE, {"input": {"id": org["id"], "name": org["name"]}})
            grant = {"organizationId": org["id"], "amount": org["grant"], "idempotencyKey": f"demo-grant-{org['id']}"}
            granted = await _call(client, _GRANT, {"input": grant})
            print(f"{org['name']}: granted {org['grant']}, balance {granted['grantCredits']['balanceAfter']}")
            for _ in range(events_per_organization):
                product = randomness.choice(products)
                quantity = randomness.randint(1, 2_000) if product.unit == "token" else randomness.randint(1, 3)
                outcome = (await _call(
                    client, _USAGE,
                    {"input": {"organizationId": org["id"], "product": product.key, "quantity": str(quantity),
                               "idempotencyKey": f"demo-{randomness.getrandbits(64):x}"}},
                ))["recordUsage"]  # fmt: skip
                print(
                    f"  {product.key:<24} x{quantity:<5} -> {outcome['status']:<8} "
                    f"charged {outcome['creditsCharged']:>8}  balance {outcome['balanceAfter']}"
                )
    print(f"open {base_url}/graphql to query and subscribe (creditMeter) yourself")
