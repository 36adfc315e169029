"""The catalog as a TOML document (`graphql_api/catalog.toml` is the example): parsed and checked
whole, so a document with any error is refused whole (`CatalogInvalid`), naming each error's line
and field: `line 42: plans[1] "meclabs-sell" versions[0].credits: must not be negative: -5`.

    [catalog]                        # optional: currency (USD), credit_price, effective_at
    currency = "USD"
    credit_price = "0.001"           # money per credit, for estimates and reports

    [[products]]                     # key, name, kind, unit; optional dimensions, effective_at
    key = "ai.tokens"
    kind = "usage"                   # usage | storage | subscription | seat | pack
    dimensions = ["model"]
    [[products.rates]]               # usage and storage products: the rate versions
    effective_at = 2026-01-01T00:00:00Z
    credits_per_unit = "1"
    dimensions = { model = "gpt-4o" }  # optional: only events carrying these; the most specific wins

    [[plans]]                        # key, then its versions
    key = "meclabs-sell"
    [[plans.versions]]
    effective_at = 2026-01-01T00:00:00Z
    name = "SELL"
    price_monthly = "995"

    [[packs]]                        # key, then its versions, likewise

Pure: the caller reads the file. Money, credits and rates are decimal text or integers, never
TOML floats (`catalog_fields`); every value is bounded (`ledger.core.bounds`); unknown fields are
refused. A document without a `[catalog]` table leaves the stored settings as they are. A syntax
error is reported at tomllib's line and column; any other error's line is found
by scanning the text (`catalog_lines`). A product's name, unit and dimensions are one version, from
its `effective_at` (default 2000-01-01T00:00:00Z); a version of a plan, a pack or a rate is given
whole (nothing is inherited from the one before). Currencies default to the catalog's.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.billing.catalog import Catalog, CatalogSettings, Product, ProductKind, RateVersion
from ledger.billing.catalog_fields import Refusal, Table
from ledger.billing.catalog_lines import Lines
from ledger.billing.catalog_plans import PACK_FIELDS, PLAN_FIELDS, read_pack, read_plan
from ledger.core import bounds
from ledger.core.errors import CatalogInvalid

V = TypeVar("V")

_TOP = frozenset({"catalog", "products", "plans", "packs"})
_SETTINGS = frozenset({"currency", "credit_price", "effective_at"})
_PRODUCT = frozenset({"key", "name", "kind", "unit", "dimensions", "effective_at", "rates"})
_RATE = frozenset(
    {"effective_at", "credits_per_unit", "dimensions", "overage_price_per_unit", "cost_per_unit", "currency"}
)
_ENTRY = frozenset({"key", "versions"})
_PRICED = frozenset({ProductKind.USAGE, ProductKind.STORAGE})
_SYNTAX = re.compile(r"(.*) \(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True, slots=True)
class CatalogDocument:
    catalog: Catalog
    has_settings: bool  # a [catalog] table was given; without one the stored settings stay as they are


def parse_catalog(text: str) -> Catalog:
    """The catalog `text` describes, or CatalogInvalid listing where it is wrong."""
    return read_document(text).catalog


def read_document(text: str) -> CatalogDocument:
    """`parse_catalog`, saying too whether the document gives the catalog's settings."""
    size = len(text.encode())
    if size > bounds.CATALOG_DOCUMENT_BYTES_MAX:
        raise CatalogInvalid(f"a catalog document is at most {bounds.CATALOG_DOCUMENT_BYTES_MAX:,} bytes, not {size:,}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogInvalid(_syntax(str(error))) from None
    reader = _Reader()
    catalog = reader.catalog(Table(data, (), "", _TOP))
    if reader.refusals:
        raise CatalogInvalid(_message(reader.refusals, Lines(text)))
    assert catalog is not None
    return CatalogDocument(catalog, "catalog" in data)


def _syntax(message: str) -> str:
    match = _SYNTAX.match(message)
    if match is None:
        return f"not TOML: {message}"
    return f"line {match[2]}, column {match[3]}: not TOML: {match[1]}"


def _message(refusals: list[Refusal], lines: Lines) -> str:
    shown = []
    for refusal in refusals[: bounds.CATALOG_PROBLEMS_MAX]:
        line = lines.line_of(refusal.path)
        shown.append(f"line {line}: {refusal}" if line is not None else str(refusal))
    if len(refusals) > bounds.CATALOG_PROBLEMS_MAX:
        shown.append(f"... and {len(refusals) - bounds.CATALOG_PROBLEMS_MAX} more")
    return "\n".join(shown)


class _Reader:
    """Reads every table, collecting each refusal (the first of each table) instead of stopping
    at the first, so one refused load lists what to fix."""

    def __init__(self) -> None:
        self.refusals: list[Refusal] = []

    def read(self, table: Table, read: Callable[[Table], V]) -> V | None:
        unknown = table.unknown()
        if unknown:
            self.refusals.extend(unknown)
            return None
        try:
            return read(table)
        except Refusal as refusal:
            self.refusals.append(refusal)
            return None

    def each(self, tables: Callable[[], list[Table]]) -> list[Table]:
        try:
            return tables()
        except Refusal as refusal:
            self.refusals.append(refusal)
            return []

    def catalog(self, top: Table) -> Catalog | None:
        section = top.data.get("catalog", {})
        if not isinstance(section, dict):
            self.refusals.append(top.refuse("catalog", "a table ([catalog])"))
            return None
        settings = self.read(Table(section, ("catalog",), "catalog", _SETTINGS), _settings)
        unknown = top.unknown()
        self.refusals.extend(unknown)
        if settings is None or unknown:
            return None
        currency = settings.currency
        products, rates = self.products(top, currency)
        # Plans name products, packs name products and plans: each read after what it names.
        plans = self.versioned(
            top, "plans", bounds.CATALOG_PLANS_MAX, PLAN_FIELDS, lambda t, k: read_plan(t, k, currency, products)
        )
        packs = self.versioned(
            top, "packs", bounds.CATALOG_PACKS_MAX, PACK_FIELDS, lambda t, k: read_pack(t, k, currency, products, plans)
        )
        return Catalog(products=products, rates=rates, plans=plans, packs=packs, settings=settings)

    def products(
        self, top: Table, currency: str
    ) -> tuple[dict[str, tuple[Product, ...]], dict[str, tuple[RateVersion, ...]]]:
        products: dict[str, tuple[Product, ...]] = {}
        rates: dict[str, tuple[RateVersion, ...]] = {}
        for table in self.each(lambda: top.tables("products", bounds.CATALOG_PRODUCTS_MAX, _PRODUCT, required=False)):
            product = self.read(table, _product)
            if product is None:
                continue
            table.name = f'{table.name} "{product.key}"'
            if product.key in products:
                self.refusals.append(table.refuse("key", f"{product.key!r} is named by an earlier product too"))
                continue
            products[product.key] = (product,)
            versions = self.rates(table, product, currency)
            if versions:
                rates[product.key] = versions
        return products, rates

    def rates(self, table: Table, product: Product, currency: str) -> tuple[RateVersion, ...]:
        found: dict[tuple[Any, ...], RateVersion] = {}
        for rate_table in self.each(lambda: table.tables("rates", bounds.CATALOG_VERSIONS_MAX, _RATE, required=False)):
            if product.kind not in _PRICED:
                self.refusals.append(rate_table.refuse(None, f"a {product.kind.value} product has no usage rates"))
                break
            rate = self.read(rate_table, lambda t: _rate(t, product, currency))
            if rate is None:
                continue
            identity = (tuple(sorted(rate.dimensions.items())), rate.effective_at)
            if identity in found:
                self.refusals.append(
                    rate_table.refuse("effective_at", "an earlier rate has these dimensions and effective_at")
                )
            found[identity] = rate
        return tuple(sorted(found.values(), key=lambda rate: rate.effective_at))

    def versioned(
        self, top: Table, field: str, maximum: int, fields: frozenset[str], read: Callable[[Table, str], V]
    ) -> dict[str, tuple[V, ...]]:
        found: dict[str, tuple[V, ...]] = {}
        for table in self.each(lambda: top.tables(field, maximum, _ENTRY, required=False)):
            key = self.read(table, Table.key)
            if key is None:
                continue
            table.name = f'{table.name} "{key}"'
            if key in found:
                self.refusals.append(table.refuse("key", f"{key!r} is named by an earlier entry too"))
                continue
            found[key] = self.versions(table, key, fields, read)
        return found

    def versions(
        self, table: Table, key: str, fields: frozenset[str], read: Callable[[Table, str], V]
    ) -> tuple[V, ...]:
        versions: dict[Any, V] = {}
        for version_table in self.each(lambda: table.tables("versions", bounds.CATALOG_VERSIONS_MAX, fields)):
            version = self.read(version_table, lambda t: read(t, key))
            if version is None:
                continue
            effective_at = getattr(version, "effective_at")  # noqa: B009 - Plan and Pack alike
            if effective_at in versions:
                self.refusals.append(version_table.refuse("effective_at", "an earlier version is effective then"))
            versions[effective_at] = version
        return tuple(versions[at] for at in sorted(versions))


def _settings(table: Table) -> CatalogSettings:
    default = CatalogSettings()
    return CatalogSettings(
        currency=table.currency(default.currency),
        credit_price=table.optional_decimal("credit_price", bounds.MONEY_RATE_MAX),
        effective_at=table.time(default=default.effective_at),
    )


def _product(table: Table) -> Product:
    key = table.key("key", bounds.PRODUCT_KEY_LENGTH_MAX)
    return Product(
        key=key,
        name=table.text("name"),
        kind=table.choice("kind", ProductKind),
        unit=table.text("unit"),
        effective_at=table.time(default=CatalogSettings().effective_at),
        dimensions=table.names("dimensions", bounds.DIMENSIONS_MAX, bounds.TEXT_LENGTH_MAX) or frozenset(),
    )


def _rate(table: Table, product: Product, currency: str) -> RateVersion:
    dimensions = table.dimensions()
    for name in dimensions:
        if name not in product.dimensions:
            declared = ", ".join(sorted(product.dimensions)) or "none"
            raise table.refuse(f"dimensions.{name}", f"not a dimension of {product.key!r} (it declares {declared})")
    return RateVersion(
        product=product.key,
        effective_at=table.time(),
        credits_per_unit=table.decimal("credits_per_unit", bounds.RATE_MAX),
        dimensions=dimensions,
        overage_price_per_unit=table.optional_decimal("overage_price_per_unit", bounds.MONEY_RATE_MAX),
        cost_per_unit=table.optional_decimal("cost_per_unit", bounds.MONEY_RATE_MAX),
        currency=table.currency(currency),
    )
