"""The subscription API as the tests call it: the plans of the seeds saved into the catalog, and the
documents and calls that subscribe, preview and change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as redis

from ledger.billing.catalog import Catalog
from ledger.billing.catalog_file import parse_catalog
from ledger.store.catalog_versions import load_catalog, save_catalog
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from tests.conftest import Service, repository_root

SUBSCRIPTION = """
id interval seats status anchor timezone trialEndsAt cancelAtPeriodEnd endsAt mediaPurgeAt nextRenewalAt
plan { key name rank } pendingPlan { key } currentPeriod { index start end } currentCreditPeriod { start end }
features { membersMax kitsIncluded extraKitPrice storageQuotaGb priorityQueue products monthlyCredits }
kits { included used extra extraPrice extraAmount } periods(first: 3) { index start end }
"""
PRORATION = """
at effectiveAt immediate planBefore { key } planAfter { key } seatsBefore seatsAfter
billingPeriod { start end } creditPeriod { start end } billingFraction creditFraction money credits currency
lines { kind description quantity unitPrice money credits }
"""
CHANGE = f"subscription {{ {SUBSCRIPTION} }} proration {{ {PRORATION} }} changeId"


async def save_example_plans(pool: asyncpg.Pool) -> Catalog:
    """The shipped example catalog's plans, products and packs, as the service loads them."""
    text = (repository_root() / "graphql_api" / "catalog.toml").read_text()
    async with pool.acquire() as connection:
        await save_catalog(connection, parse_catalog(text))
        return await load_catalog(connection)


@asynccontextmanager
async def mailbox_of(service: Service) -> AsyncIterator[Mailbox]:
    """A mailbox that waits for results, like the API's, for calling the services directly."""
    client = redis.Redis.from_url(service.settings.redis_url)
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, service.settings.partition_count, hub)
    await mailbox.start()
    try:
        yield mailbox
    finally:
        await hub.stop()
        await client.aclose()


async def call(service: Service, mutation: str, selection: str, **input: Any) -> dict[str, Any]:
    """Run a subscription mutation; the answer's data, or its errors' codes under "codes"."""
    input_type = {"cancelSubscription": "SubscriptionOrganization", "resumeSubscription": "SubscriptionOrganization"}
    name = input_type.get(mutation, mutation[0].upper() + mutation[1:])
    body = await service.graphql(
        f"mutation($input: {name}Input!) {{ {mutation}(input: $input) {{ {selection} }} }}", input=input
    )
    if body.get("errors"):
        return {"codes": [error["extensions"]["code"] for error in body["errors"]], "errors": body["errors"]}
    result: dict[str, Any] = body["data"][mutation]
    return result


async def preview(service: Service, field: str, **arguments: Any) -> dict[str, Any]:
    declared = {"organizationId": "ID!", "plan": "String!", "seats": "Int!", "prorationAt": "DateTime"}
    variables = ", ".join(f"${name}: {declared[name]}" for name in arguments)
    passed = ", ".join(f"{name}: ${name}" for name in arguments)
    body = await service.graphql(f"query({variables}) {{ {field}({passed}) {{ {PRORATION} }} }}", **arguments)
    if body.get("errors"):
        return {"codes": [error["extensions"]["code"] for error in body["errors"]]}
    result: dict[str, Any] = body["data"][field]
    return result
