"""The catalog as the API shows it: products and their rates, and what an intended usage would cost."""

from __future__ import annotations

import strawberry

from graphql_api.scalars import Credits, Quantity
from ledger.store.catalog import Product as DomainProduct


@strawberry.type(description="A product usage is priced for, and its rate.")
class Product:
    key: str = strawberry.field(description='The key usage events name, e.g. "gpt-4o.input-tokens".')
    name: str = strawberry.field(description="Display name.")
    unit: str = strawberry.field(description='The native unit a quantity counts, e.g. "token".')
    credits_per_unit: Quantity = strawberry.field(description="Credits charged per unit.")

    @classmethod
    def from_domain(cls, product: DomainProduct) -> Product:
        return cls(
            key=product.key, name=product.name, unit=product.unit, credits_per_unit=Quantity(product.credits_per_unit)
        )


@strawberry.type(description='What an intended usage would cost and whether it could be paid now ("Calculate").')
class Estimate:
    credits: Credits = strawberry.field(description="The price in credits at today's rate.")
    affordable: bool = strawberry.field(description="Whether it could be charged now, within budgets and caps.")
    code: str | None = strawberry.field(description="Why not, e.g. INSUFFICIENT_CREDITS or CAP_EXCEEDED.")
    message: str | None
