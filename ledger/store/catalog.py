"""The product registry (`products`): the products usage may name, with the platform's rate in
force now, the rate every org prices with unless it has its own version (set through the ledger,
see `ledger.core.rules`). The catalog's versions (`ledger.store.catalog_versions`) keep it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from ledger.core import bounds
from ledger.core.bounds import PRODUCT_KEY_LENGTH_MAX
from ledger.core.errors import InvalidCommand
from ledger.core.state import Rate
from ledger.core.validation import check_text


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    name: str
    unit: str
    credits_per_unit: Decimal
    overage_price_per_unit: Decimal | None = None
    cost_per_unit: Decimal | None = None
    currency: str = "USD"


_RATES = """
SELECT key, name, unit, credits_per_unit, overage_price_per_unit, cost_per_unit, currency
FROM products WHERE key = ANY($1::text[])
"""
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
_UPSERT = """
INSERT INTO products (key, name, unit, credits_per_unit, overage_price_per_unit, cost_per_unit, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (key) DO UPDATE SET name = excluded.name, unit = excluded.unit,
    credits_per_unit = excluded.credits_per_unit, overage_price_per_unit = excluded.overage_price_per_unit,
    cost_per_unit = excluded.cost_per_unit, currency = excluded.currency
"""
# Until the catalog file (ledger.billing) writes versions itself, a product's rate is one version
# in force from the start of time.
_UPSERT_RATE = """
INSERT INTO catalog_rates (product, effective_at, credits_per_unit, overage_price_per_unit, cost_per_unit, currency)
VALUES ($1, '2000-01-01T00:00:00Z', $2, $3, $4, $5)
ON CONFLICT (product, dimensions, effective_at) DO UPDATE SET credits_per_unit = excluded.credits_per_unit,
    overage_price_per_unit = excluded.overage_price_per_unit, cost_per_unit = excluded.cost_per_unit,
    currency = excluded.currency
"""


def rate_of(product: Product) -> Rate:
    return Rate(
        product.key, product.credits_per_unit, product.overage_price_per_unit, product.cost_per_unit, product.currency
    )


async def products_by_keys(connection: asyncpg.Connection | asyncpg.Pool, keys: Iterable[str]) -> dict[str, Product]:
    rows = await connection.fetch(_RATES, sorted(set(keys)))
    return {row["key"]: Product(**dict(row)) for row in rows}


async def rates_for(connection: asyncpg.Connection | asyncpg.Pool, keys: Iterable[str]) -> dict[str, Rate]:
    return {key: rate_of(product) for key, product in (await products_by_keys(connection, keys)).items()}


async def list_products(connection: asyncpg.Connection | asyncpg.Pool) -> list[Product]:
    return [Product(**dict(row)) for row in await connection.fetch(_PRODUCTS)]


def check_product(product: Product) -> None:
    """A catalog entry within the ledger's ranges (InvalidCommand otherwise): its rates price with
    the same bounds as an org's own (`SetRate`)."""
    bounds.check_decimal(product.credits_per_unit, f"{product.key}: creditsPerUnit", bounds.RATE_MAX)
    money_rates = {"overagePricePerUnit": product.overage_price_per_unit, "costPerUnit": product.cost_per_unit}
    for name, value in money_rates.items():
        if value is not None:
            bounds.check_decimal(value, f"{product.key}: {name}", bounds.MONEY_RATE_MAX)
    if not product.key or len(product.key) > PRODUCT_KEY_LENGTH_MAX:
        raise InvalidCommand(f"product keys are 1 to {PRODUCT_KEY_LENGTH_MAX} characters: {product.key!r}")
    for text in (product.key, product.name, product.unit, product.currency):
        check_text(text, f"{product.key}: text")


async def upsert_products(connection: asyncpg.Connection | asyncpg.Pool, products: Iterable[Product]) -> None:
    products = list(products)
    for product in products:
        check_product(product)
    rows = [
        (p.key, p.name, p.unit, p.credits_per_unit, p.overage_price_per_unit, p.cost_per_unit, p.currency)
        for p in products
    ]
    await connection.executemany(_UPSERT, rows)
    await connection.executemany(_UPSERT_RATE, [(row[0], *row[3:]) for row in rows])
