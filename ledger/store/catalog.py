"""The product registry (`products`): the products usage may name, with the platform's rate in
force now, the rate every org prices with unless it has its own version (set through the ledger,
see `ledger.core.rules`). The catalog's versions (`ledger.store.catalog_versions`) keep it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import asyncpg


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    name: str
    unit: str
    credits_per_unit: Decimal
    overage_price_per_unit: Decimal | None = None
    cost_per_unit: Decimal | None = None
    currency: str = "USD"


# The registry's rate columns are the dimensionless version in force when the catalog was last
# saved; a version that has come into force since is read here, so the list is never stale.
_PRODUCTS = """
SELECT p.key, p.name, p.unit,
       CASE WHEN v.product IS NULL THEN p.credits_per_unit ELSE v.credits_per_unit END AS credits_per_unit,
       CASE WHEN v.product IS NULL THEN p.overage_price_per_unit ELSE v.overage_price_per_unit END
           AS overage_price_per_unit,
       CASE WHEN v.product IS NULL THEN p.cost_per_unit ELSE v.cost_per_unit END AS cost_per_unit,
       CASE WHEN v.product IS NULL THEN p.currency ELSE v.currency END AS currency
FROM products p
LEFT JOIN LATERAL (
    SELECT product, credits_per_unit, overage_price_per_unit, cost_per_unit, currency FROM catalog_rates
    WHERE product = p.key AND dimensions = '{}'::jsonb AND effective_at <= now()
    ORDER BY effective_at DESC LIMIT 1
) v ON true
ORDER BY p.key
"""


async def list_products(connection: asyncpg.Connection | asyncpg.Pool) -> list[Product]:
    return [Product(**dict(row)) for row in await connection.fetch(_PRODUCTS)]
