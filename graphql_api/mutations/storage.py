"""Reporting the storage an organization uses (seed 001): a ledger command, so the actor judges it
against the plan's quota and raises the built-in STORAGE_OVER_QUOTA alert event once per crossing;
the answer says which plan of the catalog would hold it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.storage import ReportStorageInput
from graphql_api.outcomes import CommandOutcome
from graphql_api.scalars import Quantity
from graphql_api.submit import submit_to
from ledger.billing.storage import fitting_plan
from ledger.core.commands import SetStorageUsage


@strawberry.type(description="A storage reading as the ledger judged it against the plan's quota.")
class StorageReport:
    outcome: CommandOutcome
    used_gb: Quantity | None = strawberry.field(description="The storage in use; null while queued.")
    quota_gb: Quantity | None = strawberry.field(description="The plan's storage quota in GB; null: none (or queued).")
    over_quota: bool | None = strawberry.field(description="Whether the usage is over the quota; null while queued.")
    fitting_plan: str | None = strawberry.field(
        description="The key of the lowest-ranked plan in force whose storage quota holds the usage; null if none."
    )


def _quantity(text: str | None) -> Quantity | None:
    return None if text is None else Quantity(Decimal(text))


@strawberry.type
class StorageMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Report the storage the organization uses now, in GB. Over the plan's quota, the ledger raises "
        "a STORAGE_OVER_QUOTA alert event (once per crossing; RESOLVED when back under).",
    )
    async def report_storage(self, info: Info, input: ReportStorageInput) -> StorageReport:
        payload = SetStorageUsage(Decimal(input.gigabytes))
        outcome = await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)
        catalog = await info.context.loaders.catalog.load()
        plan = fitting_plan(catalog, datetime.now(UTC), payload.gigabytes)
        over = outcome.detail("over_quota")
        return StorageReport(
            outcome=outcome,
            used_gb=_quantity(outcome.detail("used_gb")),
            quota_gb=_quantity(outcome.detail("quota_gb")),
            over_quota=None if over is None else over == "true",
            fitting_plan=None if plan is None else plan.key,
        )
