"""Mutations that edit the catalog (the platform's): load a catalog document, add a rate version.
Either is all or nothing; a version already stored is never changed (CATALOG_INVALID says where)."""

from __future__ import annotations

from datetime import UTC

import strawberry

from graphql_api.access.authorize import Authorize, nowhere
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.catalog import AddRateVersionInput, LoadCatalogInput
from graphql_api.types.catalog import RateVersion
from ledger.billing.catalog import RateVersion as DomainRateVersion
from ledger.billing.catalog_file import read_document
from ledger.core import bounds
from ledger.core.errors import CatalogInvalid, InvalidCommand
from ledger.store.catalog_versions import add_rate_version, load_catalog, save_catalog


@strawberry.type(description="What a load stored: versions new to the catalog, and those already there.")
class CatalogLoad:
    added: int
    unchanged: int


@strawberry.type(description="The rate version, and whether it is new (false: the very same one was there).")
class RateVersionAdded:
    added: bool
    version: RateVersion


def _rate(input: AddRateVersionInput, currency: str) -> DomainRateVersion:
    if len(input.product) > bounds.PRODUCT_KEY_LENGTH_MAX:
        raise InvalidCommand(f"product keys are at most {bounds.PRODUCT_KEY_LENGTH_MAX} characters")
    dimensions = input.dimensions or []
    if len(dimensions) > bounds.DIMENSIONS_MAX:
        raise InvalidCommand(f"dimensions: at most {bounds.DIMENSIONS_MAX}")
    named = {dimension.name: dimension.value for dimension in dimensions}
    if len(named) < len(dimensions):
        raise InvalidCommand("dimensions: a name given twice")
    at = input.effective_at
    return DomainRateVersion(
        product=input.product,
        effective_at=at if at.tzinfo is None else at.astimezone(UTC),  # without a zone it is refused
        credits_per_unit=input.credits_per_unit,
        dimensions=named,
        overage_price_per_unit=input.overage_price_per_unit,
        cost_per_unit=input.cost_per_unit,
        currency=currency if input.currency is None else input.currency,
    )


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_PLATFORM, nowhere)],
        description="Load a catalog document (TOML): its new versions are added, all or none; a second load of the "
        "same document changes nothing; one without a [catalog] table leaves the settings as they are. A document "
        "with any error is refused whole (CATALOG_INVALID, naming each error's line and field).",
    )
    async def load_catalog(self, info: Info, input: LoadCatalogInput) -> CatalogLoad:
        if len(input.document.encode()) > bounds.CATALOG_DOCUMENT_BYTES_MAX:
            raise CatalogInvalid(f"a catalog document is at most {bounds.CATALOG_DOCUMENT_BYTES_MAX:,} bytes")
        document = read_document(input.document)
        async with info.context.resources.pool.acquire() as connection:
            saved = await save_catalog(connection, document.catalog, settings=document.has_settings)
        return CatalogLoad(added=saved.added, unchanged=saved.unchanged)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_PLATFORM, nowhere)],
        description="Add a rate version: usage after its effectiveAt is priced by it (history keeps its prices). "
        "A version with the same product, dimensions and effectiveAt but other content is CATALOG_INVALID.",
    )
    async def add_rate_version(self, info: Info, input: AddRateVersionInput) -> RateVersionAdded:
        async with info.context.resources.pool.acquire() as connection:
            currency = (await load_catalog(connection)).settings.currency
            rate = _rate(input, currency)
            added = await add_rate_version(connection, rate)
        return RateVersionAdded(added=added, version=RateVersion.from_domain(rate))
