"""The catalog's versions in PostgreSQL: `catalog_entries` (products, plans, packs, settings) and
`catalog_rates` (what the ledger workers price with).

A save is all or nothing, under one lock so two loads never interleave. A version already stored
with the same content is left as it is (a second load of a file changes nothing); one stored with
other content refuses the whole save, since a version never changes once loaded: add one with a
later `effective_at` instead.

A save also keeps the product registry (`products`: what `list_products` and the `products` query
show, and what usage may name) in step: each product saved gets its name and unit from the
version in force now and its rate columns from its dimensionless rate version in force now; a
product with no such version yet is left out (or as it was). A row already right is not written,
so a second save changes nothing there either.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ledger.billing.catalog import Catalog, CatalogSettings, Pack, Plan, Product, RateVersion, rate_in_force
from ledger.billing.catalog_edits import check_new_rate
from ledger.core import bounds, codec
from ledger.core.errors import CatalogInvalid

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('credit_ledger_catalog'))"
_ENTRIES = "SELECT kind, key, effective_at, body FROM catalog_entries ORDER BY kind, key, effective_at"
_ADD_ENTRY = "INSERT INTO catalog_entries (kind, key, effective_at, body) VALUES ($1, $2, $3, $4)"
_RATES = """
SELECT product, dimensions, effective_at, credits_per_unit, overage_price_per_unit, cost_per_unit, currency
FROM catalog_rates ORDER BY product, effective_at
"""
_ADD_RATE = """
INSERT INTO catalog_rates (product, dimensions, effective_at, credits_per_unit, overage_price_per_unit,
                           cost_per_unit, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

_REGISTRY = "SELECT key, name, unit FROM products WHERE key = ANY($1::text[])"
# Written only when it differs: an update fires the products trigger (migration 006) for nothing.
_REGISTER = """
INSERT INTO products (key, name, unit, credits_per_unit, overage_price_per_unit, cost_per_unit, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (key) DO UPDATE SET name = excluded.name, unit = excluded.unit,
    credits_per_unit = excluded.credits_per_unit, overage_price_per_unit = excluded.overage_price_per_unit,
    cost_per_unit = excluded.cost_per_unit, currency = excluded.currency
WHERE (products.name, products.unit, products.credits_per_unit, products.overage_price_per_unit,
       products.cost_per_unit, products.currency)
    IS DISTINCT FROM (excluded.name, excluded.unit, excluded.credits_per_unit, excluded.overage_price_per_unit,
                      excluded.cost_per_unit, excluded.currency)
"""

_KINDS: dict[str, type[Product] | type[Plan] | type[Pack] | type[CatalogSettings]] = {
    "product": Product,
    "plan": Plan,
    "pack": Pack,
    "settings": CatalogSettings,
}


@dataclass(frozen=True, slots=True)
class CatalogSave:
    added: int  # versions new to the store
    unchanged: int  # versions already stored with the same content


def _entries(catalog: Catalog, settings: bool) -> Iterable[tuple[str, str, datetime, Any]]:
    for kind, versions in (("product", catalog.products), ("plan", catalog.plans), ("pack", catalog.packs)):
        for key, of_key in versions.items():
            for version in of_key:
                yield kind, key, version.effective_at, version
    if settings:
        yield "settings", "catalog", catalog.settings.effective_at, catalog.settings


def _rate_row(rate: RateVersion) -> tuple[Any, ...]:
    return (
        rate.product,
        dict(rate.dimensions),
        rate.effective_at,
        rate.credits_per_unit,
        rate.overage_price_per_unit,
        rate.cost_per_unit,
        rate.currency,
    )


async def save_catalog(
    connection: asyncpg.Connection, catalog: Catalog, now: datetime | None = None, *, settings: bool = True
) -> CatalogSave:
    """Store every version of `catalog` that is not stored yet, or refuse it whole (CatalogInvalid);
    then bring the registry rows of its products to what is in force at `now` (default: now).
    `settings=False` leaves the catalog's settings out (an edit of some entries only)."""
    added = unchanged = 0
    async with connection.transaction():
        await connection.execute(_LOCK)
        stored = {(r["kind"], r["key"], r["effective_at"]): r["body"] for r in await connection.fetch(_ENTRIES)}
        rates = {(r["product"], codec_key(r["dimensions"]), r["effective_at"]): tuple(r.values())
                 for r in await connection.fetch(_RATES)}  # fmt: skip
        new_entries: list[tuple[str, str, datetime, Any]] = []
        for kind, key, effective_at, version in _entries(catalog, settings):
            body = codec.to_json(version)
            before = stored.get((kind, key, effective_at))
            if before is None:
                new_entries.append((kind, key, effective_at, body))
            elif before == body or codec.from_json(type(version), before) == version:
                # The same version (stored before a field with a default was added to its kind).
                unchanged += 1
            else:
                raise CatalogInvalid(_changed(kind, key, effective_at))
        new_rates: list[tuple[Any, ...]] = []
        for of_product in catalog.rates.values():
            for rate in of_product:
                row = _rate_row(rate)
                before_rate = rates.get((rate.product, codec_key(row[1]), rate.effective_at))
                if before_rate is None:
                    new_rates.append(row)
                elif _same_rate(before_rate, row):
                    unchanged += 1
                else:
                    raise CatalogInvalid(_changed("rate", rate.product, rate.effective_at))
        moment = now or datetime.now(UTC)
        _refuse_rewritten_history(
            {(kind, key) for kind, key, _ in stored} | {("rate", product) for product, _, _ in rates},
            [(kind, key, at) for kind, key, at, _ in new_entries] + [("rate", row[0], row[2]) for row in new_rates],
            moment,
        )
        await connection.executemany(_ADD_ENTRY, new_entries)
        await connection.executemany(_ADD_RATE, new_rates)
        added = len(new_entries) + len(new_rates)
        await _register(connection, catalog.products.keys() | catalog.rates.keys(), moment)
    return CatalogSave(added=added, unchanged=unchanged)


def _refuse_rewritten_history(known: set[tuple[str, str]], new: list[tuple[str, str, datetime]], now: datetime) -> None:
    """A new version of something already in the catalog takes effect now or later: dated in the
    past it would reprice usage already charged (or a late event) and change the payload a retried
    proration derives, under the same key. Something new to the catalog may carry any date, since
    nothing was priced by it."""
    for kind, key, effective_at in new:
        if (kind, key) in known and effective_at < now - bounds.CLOCK_SKEW_MAX:
            raise CatalogInvalid(
                f"{kind} {key!r}: a new version of it must take effect now or later, not {effective_at.isoformat()}"
                " (history keeps the prices it was charged)"
            )


async def _register(connection: asyncpg.Connection, keys: Collection[str], now: datetime) -> None:
    """The registry rows of `keys` as the stored versions (all of them, not only this save's) say."""
    stored = await load_catalog(connection)
    known = {row["key"]: (row["name"], row["unit"]) for row in await connection.fetch(_REGISTRY, sorted(keys))}
    rows = []
    for key in sorted(keys):
        product = stored.product_at(key, now)
        described = (product.name, product.unit) if product is not None else known.get(key)
        plain = [rate for rate in stored.rates.get(key, ()) if not rate.dimensions]
        rate = rate_in_force(plain, now, {})
        if described is not None and rate is not None:
            rows.append((key, *described, *_rate_row(rate)[3:]))
    await connection.executemany(_REGISTER, rows)


async def add_rate_version(connection: asyncpg.Connection, rate: RateVersion, now: datetime | None = None) -> bool:
    """Add one rate version to the stored catalog (`ledger.billing.catalog_edits` judges it); True
    if it is new, False if the very same version was there. Another version with the same product,
    dimensions and effective time is refused (CatalogInvalid), as in any save."""
    now = now or datetime.now(UTC)
    async with connection.transaction():
        await connection.execute(_LOCK)  # the catalog it is judged against cannot change meanwhile
        check_new_rate(await load_catalog(connection), rate, now)
        saved = await save_catalog(connection, Catalog(rates={rate.product: (rate,)}), now, settings=False)
    return saved.added == 1


def codec_key(dimensions: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(dimensions).items()))


def _same_rate(stored: tuple[Any, ...], row: tuple[Any, ...]) -> bool:
    # Numerics compare by value (2 == 2.00): a file that writes "2.00" for a stored 2 is the same.
    return stored[3:] == row[3:] and codec_key(stored[1]) == codec_key(row[1])


def _changed(kind: str, key: str, effective_at: datetime) -> str:
    return (
        f"{kind} {key!r} already has a version effective {effective_at.isoformat()} with other content; a version"
        " never changes once loaded (history keeps its prices): add a version with a later effectiveAt"
    )


async def load_catalog(connection: asyncpg.Connection | asyncpg.Pool) -> Catalog:
    """Every stored version."""
    found: dict[str, dict[str, list[Any]]] = {"product": {}, "plan": {}, "pack": {}}
    settings = CatalogSettings()
    for row in await connection.fetch(_ENTRIES):
        kind = row["kind"]
        version = codec.from_json(_KINDS[kind], row["body"])
        if kind == "settings":
            assert isinstance(version, CatalogSettings)
            settings = version
        else:
            found[kind].setdefault(row["key"], []).append(version)
    rates: dict[str, list[RateVersion]] = {}
    for row in await connection.fetch(_RATES):
        rates.setdefault(row["product"], []).append(
            RateVersion(
                product=row["product"],
                effective_at=row["effective_at"],
                credits_per_unit=row["credits_per_unit"],
                dimensions=dict(row["dimensions"]),
                overage_price_per_unit=row["overage_price_per_unit"],
                cost_per_unit=row["cost_per_unit"],
                currency=row["currency"],
            )
        )
    return Catalog(
        products={key: tuple(versions) for key, versions in found["product"].items()},
        rates={key: tuple(versions) for key, versions in rates.items()},
        plans={key: tuple(versions) for key, versions in found["plan"].items()},
        packs={key: tuple(versions) for key, versions in found["pack"].items()},
        settings=settings,
    )
