from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import strawberry

from graphql_api.access.authorize import Authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.ids import parse_id
from graphql_api.types import MeterReading, load_organization
from ledger.core.money import MicroCredits
from ledger.core.state import Balance
from ledger.store.balances import balances_by_orgs
from ledger.stream import keys


def _reading(data: dict[str, Any]) -> MeterReading:
    balance = Balance(MicroCredits(data["total"]), MicroCredits(data["held"]))
    return MeterReading.from_balance(UUID(data["organization_id"]), balance, datetime.fromisoformat(data["at"]))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description="The organization's balance now, then again after every command the ledger applies to it.",
    )
    async def credit_meter(self, info: Info, organization_id: strawberry.ID) -> AsyncGenerator[MeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        await load_organization(info, org_id)
        resources = info.context.resources
        # Listen before reading, so no change between the two is missed.
        async with resources.hub.listen(keys.meter_channel(org_id)) as queue:
            now = datetime.now(UTC)
            balance = (await balances_by_orgs(resources.pool, [org_id], now))[org_id]
            yield MeterReading.from_balance(org_id, balance, now)
            while True:
                yield _reading(json.loads(await queue.get()))
