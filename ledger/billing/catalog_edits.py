"""An edit of the stored catalog by the platform (`addRateVersion`), judged against what is stored:
the same bounds as a catalog document's, on a product the catalog knows, with dimensions it
declares. A document describes the catalog's history, so its versions may be dated from 2000 on;
an edit adds to its future: a new rate version is effective from now (within the clock's skew)
on, so no usage already recorded, or quoted at the old rate, is priced again.
"""

from __future__ import annotations

import re
from datetime import datetime

from ledger.billing.catalog import Catalog, Product, ProductKind, RateVersion
from ledger.core import bounds
from ledger.core.errors import CatalogInvalid, InvalidCommand, UnknownProduct

_CURRENCY = re.compile(r"[A-Z]{3}")
_PRICED = frozenset({ProductKind.USAGE, ProductKind.STORAGE})


def check_new_rate(catalog: Catalog, rate: RateVersion, now: datetime) -> None:
    """Refuse `rate` as an addition to `catalog` at `now`: InvalidCommand for a value out of its
    bounds, UnknownProduct for a product the catalog lacks, CatalogInvalid for one that takes no
    rate or a dimension it does not declare."""
    bounds.check_window(rate.effective_at, "effectiveAt", now, bounds.CLOCK_SKEW_MAX, bounds.FUTURE_DATE_MAX)
    bounds.check_decimal(rate.credits_per_unit, "creditsPerUnit", bounds.RATE_MAX)
    for name, money in (("overagePricePerUnit", rate.overage_price_per_unit), ("costPerUnit", rate.cost_per_unit)):
        if money is not None:
            bounds.check_decimal(money, name, bounds.MONEY_RATE_MAX)
    if not _CURRENCY.fullmatch(rate.currency):
        raise InvalidCommand(f"currency: an ISO 4217 code such as USD, not {rate.currency!r}")
    if len(rate.dimensions) > bounds.DIMENSIONS_MAX:
        raise InvalidCommand(f"dimensions: at most {bounds.DIMENSIONS_MAX}")
    for name, value in rate.dimensions.items():
        if not value or len(value) > bounds.TEXT_LENGTH_MAX or not value.isprintable():
            raise InvalidCommand(f"dimensions.{name[:50]}: printable text of 1 to {bounds.TEXT_LENGTH_MAX} characters")
    product = catalog.product_at(rate.product, rate.effective_at) or _latest(catalog, rate.product)
    if product is None:
        if rate.product not in catalog.rates:
            raise UnknownProduct(f"no product {rate.product[:100]!r} in the catalog: load it with a catalog first")
        declared: frozenset[str] = frozenset()  # an early product, only ever priced: no dimensions
    elif product.kind not in _PRICED:
        raise CatalogInvalid(f"product {product.key!r}: a {product.kind.value} product has no usage rates")
    else:
        declared = product.dimensions
    undeclared = sorted(set(rate.dimensions) - declared)
    if undeclared:
        names = ", ".join(sorted(declared)) or "none"
        raise CatalogInvalid(
            f"dimensions.{undeclared[0][:50]}: not a dimension of {rate.product!r} (it declares {names})"
        )


def _latest(catalog: Catalog, key: str) -> Product | None:
    versions = catalog.products.get(key, ())
    return versions[-1] if versions else None
