"""Input of the storage report."""

from __future__ import annotations

import strawberry

from graphql_api.outcomes import Ack
from graphql_api.scalars import Quantity


@strawberry.input(description="The storage an organization uses now: a gauge, not an amount to add.")
class ReportStorageInput:
    organization_id: strawberry.ID
    gigabytes: Quantity = strawberry.field(description="GB in use now: up to 6 decimals, at most 1,000,000,000.")
    idempotency_key: str = strawberry.field(
        description="Your unique key for this reading; a retry with it applies once."
    )
    ack: Ack = Ack.APPLIED
