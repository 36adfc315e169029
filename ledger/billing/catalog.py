"""The catalog as data: products, rates, plans and credit packs, each a version in force from its
`effective_at` on. Pure: loading it (a TOML file, `ledger.billing.catalog_file`) and storing it
(`ledger.store.catalog`) live elsewhere.

A version never changes once loaded, so history keeps the prices it was charged; what is in force
at a time is the latest version effective at or before it (`Catalog.plan_at` and friends).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from ledger.core import state
from ledger.core.commands import AtZero
from ledger.core.money import ZERO, MicroCredits


class ProductKind(StrEnum):
    USAGE = "usage"  # metered in native units (tokens, messages, minutes) and priced in credits
    STORAGE = "storage"  # a gauge in GB, checked against the plan's quota
    SUBSCRIPTION = "subscription"  # a plan's recurring price
    SEAT = "seat"  # a plan's per-seat price
    PACK = "pack"  # a credit pack bought once


class Interval(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"


class CreditPolicy(StrEnum):
    """What a period's unused base credits do at the period's end."""

    RESET = "reset"  # breakage: use it or lose it
    ROLLOVER = "rollover"  # into the rollover bank, within the plan's cap and lifetime


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    name: str
    kind: ProductKind
    unit: str
    effective_at: datetime
    dimensions: frozenset[str] = frozenset()  # what events may name for pricing and reports: model, operation


@dataclass(frozen=True, slots=True)
class RateVersion:
    """Credits per native unit of a product, for events carrying `dimensions` (all of them; {}
    for every event of the product), from `effective_at` on."""

    product: str
    effective_at: datetime
    credits_per_unit: Decimal
    dimensions: Mapping[str, str] = field(default_factory=dict)
    overage_price_per_unit: Decimal | None = None  # money per unit beyond the credits
    cost_per_unit: Decimal | None = None  # what the provider charges us per unit
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan version. Prices are money per interval (None: custom, invoiced by contract);
    credits are per month of the subscription (an annual subscription gets them monthly)."""

    key: str
    name: str
    effective_at: datetime
    currency: str = "USD"
    prices: Mapping[Interval, Decimal | None] = field(default_factory=dict)
    per_seat: bool = False  # the price is per seat
    credits: MicroCredits = ZERO  # included each month
    credits_per_seat: MicroCredits = ZERO  # each month, per seat
    seats_included: int = 0
    kits_included: int | None = None  # None: unlimited
    extra_kit_price: Decimal | None = None  # per kit beyond those included, per interval; None: refused
    members_max: int | None = None  # None: unlimited
    storage_quota_gb: Decimal | None = None  # None: unlimited
    credit_policy: CreditPolicy = CreditPolicy.RESET
    rollover_cap: MicroCredits | None = None  # the bank's most, with ROLLOVER
    rollover_cycles: int | None = None  # a bank lot's life in months, with ROLLOVER
    bonus_expiry_days: int | None = None  # bonus lots granted under the plan expire after this
    purchased_expiry_days: int | None = None  # None: purchased credits never expire
    trial_days: int = 0
    trial_months: int = 0
    products: frozenset[str] | None = None  # the plan's credits (and usage) only for these
    at_zero: AtZero = AtZero.BLOCK
    generation: bool = True  # False: usage refused (Archive); reads, history and downloads stay
    media_purge_days: int | None = None  # Archive: media purged this long after the downgrade
    priority_queue: bool = False
    pooled: bool = True  # credits are the organization's, shared by its members
    custom: bool = False  # Enterprise: priced by contract, invoiced
    rank: int = 0  # upgrades go up: a change to a higher rank applies at once, lower at period end
    description: str = ""
    # None: the saved card is charged when an invoice is issued; N: invoices are sent Net-N (a due
    # date N days after issue, no charge), as enterprise annual contracts are.
    invoice_terms_days: int | None = None

    def price(self, interval: Interval) -> Decimal | None:
        return self.prices.get(interval)

    @property
    def has_trial(self) -> bool:
        return self.trial_days > 0 or self.trial_months > 0


@dataclass(frozen=True, slots=True)
class Pack:
    """Credits bought once for money; granted only when paid (the payments issue)."""

    key: str
    name: str
    effective_at: datetime
    credits: MicroCredits
    price: Decimal
    currency: str = "USD"
    expires_after_days: int | None = None  # None: never
    products: frozenset[str] | None = None  # the pack's credits only for these
    surcharge_percent: Decimal = Decimal(0)  # the out-of-credit one-time pack's premium (seed 001: 15)
    out_of_credit: bool = False  # offered when a debit is refused for want of credits
    signup: bool = False  # granted free at sign-up (seed 004: 20 credits)
    plans: frozenset[str] | None = None  # offered to these plans only

    @property
    def price_per_credit(self) -> Decimal:
        return self.price / (Decimal(self.credits) / 1_000_000) if self.credits else Decimal(0)


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    currency: str = "USD"
    credit_price: Decimal | None = None  # money per credit, for estimates and reports
    effective_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)


_V = TypeVar("_V", Product, Plan, Pack)


def _in_force(versions: Iterable[_V], at: datetime) -> _V | None:
    best: _V | None = None
    for version in versions:
        if version.effective_at <= at and (best is None or version.effective_at > best.effective_at):
            best = version
    return best


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every version of everything, by key."""

    products: Mapping[str, tuple[Product, ...]] = field(default_factory=dict)
    rates: Mapping[str, tuple[RateVersion, ...]] = field(default_factory=dict)
    plans: Mapping[str, tuple[Plan, ...]] = field(default_factory=dict)
    packs: Mapping[str, tuple[Pack, ...]] = field(default_factory=dict)
    settings: CatalogSettings = field(default_factory=CatalogSettings)

    def plan_at(self, key: str, at: datetime) -> Plan | None:
        return _in_force(self.plans.get(key, ()), at)

    def pack_at(self, key: str, at: datetime) -> Pack | None:
        return _in_force(self.packs.get(key, ()), at)

    def product_at(self, key: str, at: datetime) -> Product | None:
        return _in_force(self.products.get(key, ()), at)

    def plans_at(self, at: datetime) -> list[Plan]:
        """Every plan in force at `at`, by rank then key."""
        found = [plan for key in self.plans if (plan := self.plan_at(key, at)) is not None]
        return sorted(found, key=lambda plan: (plan.rank, plan.key))

    def rate_at(self, product: str, at: datetime, dimensions: Mapping[str, str] | None = None) -> RateVersion | None:
        """The version pricing an event of `product` with `dimensions` at `at`: among the versions
        whose dimensions the event carries, the most specific, and of those the latest in force."""
        return rate_in_force(self.rates.get(product, ()), at, dimensions or {})


def rate_in_force(versions: Iterable[RateVersion], at: datetime, dimensions: Mapping[str, str]) -> RateVersion | None:
    """The ledger's one rule for choosing a version (`ledger.core.state.rate_in_force`): the worker
    prices with it, so what the catalog shows is what a debit is charged."""
    return state.rate_in_force(versions, at, dimensions)
