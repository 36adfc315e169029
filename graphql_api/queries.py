from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from graphql_api.access.authorize import Authorize, from_argument, nowhere
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.ids import parse_id
from graphql_api.mutations import optional_id, require_product
from graphql_api.scalars import Credits, Quantity
from graphql_api.types import Organization, Product, load_organization
from ledger.core.commands import Command, Envelope, RecordUsage
from ledger.core.spending import Spender, estimate
from ledger.store.catalog import list_products
from ledger.store.states import load_states


@strawberry.type(description='What an intended usage would cost and whether it could be paid now ("Calculate").')
class Estimate:
    credits: Credits = strawberry.field(description="The price in credits at today's rate.")
    affordable: bool = strawberry.field(description="Whether it could be charged now, within budgets and caps.")
    code: str | None = strawberry.field(description="Why not, e.g. INSUFFICIENT_CREDITS or CAP_EXCEEDED.")
    message: str | None


@strawberry.type
class Query:
    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("id", "id"))],
        description="One organization by id; NOT_FOUND when there is none.",
    )
    async def organization(self, info: Info, id: strawberry.ID) -> Organization:
        return Organization.from_domain(await load_organization(info, parse_id(id, "id")))

    @strawberry.field(
        extensions=[Authorize(Permission.READ_CATALOG, nowhere)],
        description="The products usage can be recorded for, with their rates.",
    )
    async def products(self, info: Info) -> list[Product]:
        return [Product.from_domain(product) for product in await list_products(info.context.resources.pool)]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description="Price an intended usage and say whether it is affordable; changes nothing.",
    )
    async def estimate_usage(
        self,
        info: Info,
        organization_id: strawberry.ID,
        product: str,
        quantity: Quantity,
        team_id: strawberry.ID | None = None,
        user_id: str | None = None,
    ) -> Estimate:
        org = parse_id(organization_id, "organizationId")
        await load_organization(info, org)
        await require_product(info, product)
        now = datetime.now(UTC)
        team = optional_id(team_id, "teamId")
        # The state a recordUsage would meet, read without sending anything.
        probe = Command(Envelope(uuid.uuid4(), org, "estimate", now), RecordUsage(product, Decimal(quantity)))
        async with info.context.resources.pool.acquire() as connection:
            state = (await load_states(connection, [probe]))[org]
        answer = estimate(state, Spender(now, product, team, user_id), Decimal(quantity))
        return Estimate(
            credits=Credits(answer.credits), affordable=answer.affordable, code=answer.code, message=answer.message
        )
