"""The root queries: an organization (most reads start there), the catalog, a usage estimate, and
who is calling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.tools import merge_types

from graphql_api.access.authorize import Authorize, from_argument, nowhere
from graphql_api.access.policy import Permission
from graphql_api.billing.invoices import InvoiceQueries
from graphql_api.billing.payments import PaymentQueries
from graphql_api.billing.recharge import RechargeQueries
from graphql_api.billing.revenue import RevenueQueries
from graphql_api.context import Info
from graphql_api.enums import Interval, PrincipalKind
from graphql_api.inputs import (
    load_organization,
    optional_id,
    parse_id,
    require_product,
)
from graphql_api.scalars import Credits, Quantity, id_of
from graphql_api.types.access import Viewer
from graphql_api.types.catalog import Catalog, Estimate, Product
from graphql_api.types.organization import Organization
from graphql_api.types.subscriptions import Proration, preview_plan_change_of, preview_seat_change_of
from ledger.core import bounds
from ledger.core.charge import Spender
from ledger.core.commands import Command, Envelope, RecordUsage
from ledger.core.spending import estimate
from ledger.store.catalog import list_products
from ledger.store.states import load_states

PRORATION_AT = "Prorate as of this time (at most 15 minutes ago); default: now. Pass the answer's `at` to the change."


@strawberry.type
class LedgerQueries:
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
        extensions=[Authorize(Permission.READ_CATALOG, nowhere)],
        description="The catalog: products with their rate versions, plans and packs with their versions and the "
        "one in force at `at` (default now).",
    )
    async def catalog(self, info: Info, at: datetime | None = None) -> Catalog:
        at = at or datetime.now(UTC)
        bounds.check_time(at, "at")
        return Catalog.from_domain(await info.context.loaders.catalog.load(), at)

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

    @strawberry.field(
        extensions=[Authorize(Permission.MANAGE_BILLING, from_argument("organization_id", "organizationId"))],
        description="What changePlan would do now, line by line (the same computation); changes nothing.",
    )
    async def preview_plan_change(
        self,
        info: Info,
        organization_id: strawberry.ID,
        plan: str,
        interval: Interval | None = None,
        proration_at: Annotated[datetime | None, strawberry.argument(description=PRORATION_AT)] = None,
    ) -> Proration:
        return await preview_plan_change_of(info, organization_id, plan, interval, proration_at)

    @strawberry.field(
        extensions=[Authorize(Permission.MANAGE_BILLING, from_argument("organization_id", "organizationId"))],
        description="What setSeats would do now, line by line (the same computation); changes nothing.",
    )
    async def preview_seat_change(
        self,
        info: Info,
        organization_id: strawberry.ID,
        seats: int,
        proration_at: Annotated[datetime | None, strawberry.argument(description=PRORATION_AT)] = None,
    ) -> Proration:
        return await preview_seat_change_of(info, organization_id, seats, proration_at)

    @strawberry.field(extensions=[Authorize(Permission.IDENTIFY, nowhere)], description="Who is calling.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        key_id = principal.api_key_id
        return Viewer(
            kind=principal.kind,
            user_id=principal.id if principal.kind is PrincipalKind.USER else None,
            api_key_id=id_of(key_id),
            organization_id=id_of(principal.organization_id),
            role=principal.role,
            partner_id=id_of(principal.partner_id),
        )


Query = merge_types("Query", (LedgerQueries, PaymentQueries, InvoiceQueries, RechargeQueries, RevenueQueries))
