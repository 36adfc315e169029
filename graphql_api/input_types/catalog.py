"""Inputs of the catalog mutations (the platform's)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.scalars import Quantity
from ledger.core import bounds


@strawberry.input(
    description=f"A catalog document in TOML (the format of `credit-ledger catalog load`), at most "
    f"{bounds.CATALOG_DOCUMENT_BYTES_MAX:,} bytes. Its versions not stored yet are added, all or none."
)
class LoadCatalogInput:
    document: str


@strawberry.input(description='A dimension a rate version requires of an event, e.g. name "model", value "gpt-4o".')
class RateDimensionInput:
    name: str
    value: str


@strawberry.input(
    description="A new rate version of a product the catalog has: in force from `effectiveAt` (now or later) on, for "
    "events carrying all its dimensions."
)
class AddRateVersionInput:
    product: str
    effective_at: datetime = strawberry.field(description="From when it prices (now, within 5 minutes, or later).")
    credits_per_unit: Quantity
    dimensions: list[RateDimensionInput] | None = strawberry.field(
        default=None, description="Only events carrying these (each a dimension the product declares); none: all."
    )
    overage_price_per_unit: Quantity | None = None
    cost_per_unit: Quantity | None = None
    currency: str | None = strawberry.field(default=None, description="Default: the catalog's currency.")
