from __future__ import annotations

import strawberry

from graphql_api.context import Info
from graphql_api.ids import parse_id
from graphql_api.types import Organization, Product, load_organization
from ledger.store.catalog import list_products


@strawberry.type
class Query:
    @strawberry.field(description="One organization by id; NOT_FOUND when there is none.")
    async def organization(self, info: Info, id: strawberry.ID) -> Organization:
        return Organization.from_domain(await load_organization(info, parse_id(id, "id")))

    @strawberry.field(description="The products usage can be recorded for, with their rates.")
    async def products(self, info: Info) -> list[Product]:
        return [Product.from_domain(product) for product in await list_products(info.context.resources.pool)]
