"""What an organization's plan allows, as the ledger judges its debits by it (`SetAccess`, sent by
billing), with the storage it last reported."""

from __future__ import annotations

from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.enums import AccessStatus
from graphql_api.scalars import Quantity
from ledger.store.access import OrganizationAccess, access_of


@strawberry.type(
    description="What the organization's plan allows. Without a subscription: ACTIVE, every product, no quota."
)
class PlanAccess:
    status: AccessStatus = strawberry.field(
        description="ACTIVE; TRIAL_ENDED or INACTIVE refuse usage, holds and quotes (reads and history still work)."
    )
    plan: str | None = strawberry.field(description="The plan's key; null without a subscription.")
    products: list[str] | None = strawberry.field(description="The only products usage may be for; null: every one.")
    storage_quota_gb: Quantity | None = strawberry.field(description="The storage quota in GB; null: none.")
    storage_used_gb: Quantity = strawberry.field(description="The storage in use as last reported (reportStorage).")
    priority_queue: bool = strawberry.field(description="Whether the plan's jobs go to the priority queue.")

    @classmethod
    def from_domain(cls, found: OrganizationAccess) -> PlanAccess:
        access = found.access
        return cls(
            status=access.status,
            plan=access.plan or None,
            products=None if access.products is None else sorted(access.products),
            storage_quota_gb=None if access.storage_quota_gb is None else Quantity(access.storage_quota_gb),
            storage_used_gb=Quantity(found.storage_used_gb),
            priority_queue=access.priority_queue,
        )


async def plan_access_of(info: Info, org_id: UUID) -> PlanAccess:
    return PlanAccess.from_domain(await access_of(info.context.resources.pool, org_id))
