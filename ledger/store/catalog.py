"""The catalog: products and the platform's rate for each, the rate every org prices with unless
it has its own version (set through the ledger, see `ledger.core.rules`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from ledger.core.state import Rate


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
_PRODUCTS = """
SELECT key, name, unit, credits_per_unit, overage_price_per_unit, cost_per_unit, currency
FROM products ORDER BY key
"""
_UPSERT = """
INSERT INTO products (key, name, unit, credits_per_unit, overage_price_per_unit, cost_per_unit, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (key) DO UPDATE SET name = excluded.name, unit = excluded.unit,
    credits_per_unit = excluded.credits_per_unit, overage_price_per_unit = excluded.overage_price_per_unit,
    cost_per_unit = excluded.cost_per_unit, currency = excluded.currency
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


async def upsert_products(connection: asyncpg.Connection | asyncpg.Pool, products: Iterable[Product]) -> None:
    await connection.executemany(
        _UPSERT,
        [
            (p.key, p.name, p.unit, p.credits_per_unit, p.overage_price_per_unit, p.cost_per_unit, p.currency)
            for p in products
        ],
    )
