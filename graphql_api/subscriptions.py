from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import strawberry

from graphql_api.context import Info
from graphql_api.ids import parse_id
from graphql_api.scalars import Credits
from graphql_api.types import MeterReading, load_organization
from ledger.store.balances import balances_by_orgs
from ledger.stream import keys


def _reading(data: dict[str, Any]) -> MeterReading:
    return MeterReading(
        organization_id=strawberry.ID(data["organization_id"]),
        total=Credits(data["total"]),
        held=Credits(data["held"]),
        available=Credits(data["available"]),
        at=datetime.fromisoformat(data["at"]),
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The organization's balance now, then again after every command the ledger applies to it."
    )
    async def credit_meter(self, info: Info, organization_id: strawberry.ID) -> AsyncGenerator[MeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        await load_organization(info, org_id)
        resources = info.context.resources
        # Listen before reading, so no change between the two is missed.
        async with resources.hub.listen(keys.meter_channel(org_id)) as queue:
            now = datetime.now(UTC)
            balance = (await balances_by_orgs(resources.pool, [org_id], now))[org_id]
            yield MeterReading(
                organization_id=strawberry.ID(str(org_id)),
                total=Credits(balance.total),
                held=Credits(balance.held),
                available=Credits(balance.available),
                at=now,
            )
            while True:
                yield _reading(json.loads(await queue.get()))
