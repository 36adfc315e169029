"""The catalog's rates, as the ledger prices with them."""

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


_RATES = "SELECT key, credits_per_unit FROM products WHERE key = ANY($1::text[])"
_PRODUCTS = "SELECT key, name, unit, credits_per_unit FROM products ORDER BY key"
_UPSERT = """
INSERT INTO products (key, name, unit, credits_per_unit) VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO UPDATE SET name = excluded.name, unit = excluded.unit,
    credits_per_unit = excluded.credits_per_unit
"""


async def rates_for(connection: asyncpg.Connection | asyncpg.Pool, products: Iterable[str]) -> dict[str, Rate]:
    rows = await connection.fetch(_RATES, sorted(set(products)))
    return {row["key"]: Rate(row["key"], row["credits_per_unit"]) for row in rows}


async def list_products(connection: asyncpg.Connection | asyncpg.Pool) -> list[Product]:
    return [Product(**dict(row)) for row in await connection.fetch(_PRODUCTS)]


async def upsert_products(connection: asyncpg.Connection | asyncpg.Pool, products: Iterable[Product]) -> None:
    await connection.executemany(_UPSERT, [(p.key, p.name, p.unit, p.credits_per_unit) for p in products])
