"""The catalog as the API shows it: products and their rate versions, plans and packs with their
versions and the one in force at a time, and what an intended usage would cost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import strawberry

from graphql_api.enums import AtZero, CreditPolicy, ProductKind
from graphql_api.scalars import Credits, Quantity
from ledger.billing import catalog as domain
from ledger.core.money import money
from ledger.store.catalog import Product as DomainProduct


def _money(value: Decimal | None) -> Quantity | None:
    return None if value is None else Quantity(value)


def _paid(pack: domain.Pack) -> Quantity:
    """The pack's price with its surcharge, exact (to a millionth), without trailing zeros."""
    paid = money(pack.price, (100 + pack.surcharge_percent).scaleb(-2))
    return Quantity(Decimal(format(paid.normalize(), "f")))


def _keys(keys: frozenset[str] | None) -> list[str] | None:
    return None if keys is None else sorted(keys)


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


@strawberry.type(description='A dimension a rate version requires of an event, e.g. name "model", value "gpt-4o".')
class RateDimension:
    name: str
    value: str


@strawberry.type(
    description="Credits per native unit of a product from `effectiveAt` on, for events carrying all its "
    "`dimensions` (none: every event). An event is priced by the version in force at its time: among those its "
    "dimensions select, the most specific, and of those the latest."
)
class RateVersion:
    product: str
    effective_at: datetime
    credits_per_unit: Quantity
    dimensions: list[RateDimension]
    overage_price_per_unit: Quantity | None = strawberry.field(description="Money per unit beyond the credits.")
    cost_per_unit: Quantity | None = strawberry.field(description="What the provider charges per unit.")
    currency: str

    @classmethod
    def from_domain(cls, rate: domain.RateVersion) -> RateVersion:
        return cls(
            product=rate.product,
            effective_at=rate.effective_at,
            credits_per_unit=Quantity(rate.credits_per_unit),
            dimensions=[RateDimension(name=k, value=v) for k, v in sorted(rate.dimensions.items())],
            overage_price_per_unit=_money(rate.overage_price_per_unit),
            cost_per_unit=_money(rate.cost_per_unit),
            currency=rate.currency,
        )


@strawberry.type(description="A product of the catalog: what it is, its unit and dimensions, its rate versions.")
class CatalogProduct:
    key: str
    name: str
    kind: ProductKind
    unit: str
    effective_at: datetime
    dimensions: list[str] = strawberry.field(description="What events may name for pricing and reports.")
    rates: list[RateVersion] = strawberry.field(description="Every rate version, oldest first.")


@strawberry.type(description="A version of a plan: what a subscription to it costs, grants and allows.")
class PlanVersion:
    key: str
    name: str
    description: str
    effective_at: datetime
    currency: str
    price_monthly: Quantity | None = strawberry.field(description="Money a month (per seat if perSeat); null: none.")
    price_annual: Quantity | None = strawberry.field(description="Money a year (per seat if perSeat); null: none.")
    per_seat: bool
    credits: Credits = strawberry.field(description="Credits included each month.")
    credits_per_seat: Credits = strawberry.field(description="Credits each month per seat (pooled).")
    seats_included: int
    kits_included: int | None = strawberry.field(description="Kits included; null: unlimited.")
    extra_kit_price: Quantity | None = strawberry.field(description="Per kit beyond those, per interval; null: none.")
    members_max: int | None = strawberry.field(description="Most members; null: unlimited.")
    storage_quota_gb: Quantity | None = strawberry.field(description="Storage quota in GB; null: unlimited.")
    credit_policy: CreditPolicy
    rollover_cap: Credits | None = strawberry.field(description="ROLLOVER: the bank's most; null: no cap.")
    rollover_cycles: int | None = strawberry.field(description="ROLLOVER: a bank lot's life in months.")
    bonus_expiry_days: int | None = strawberry.field(description="Bonus credits expire this long after grant.")
    purchased_expiry_days: int | None = strawberry.field(description="Purchased credits' life; null: never expire.")
    trial_days: int
    trial_months: int
    products: list[str] | None = strawberry.field(description="The only products its credits pay for; null: all.")
    at_zero: AtZero
    generation: bool = strawberry.field(description="False: usage refused (Archive); reads and history stay.")
    media_purge_days: int | None = strawberry.field(description="Media purged this long after a downgrade to it.")
    priority_queue: bool
    pooled: bool = strawberry.field(description="Credits are the organization's, shared by its members.")
    custom: bool = strawberry.field(description="Priced by contract and invoiced (Enterprise).")
    rank: int = strawberry.field(description="Higher is an upgrade (at once); lower a downgrade (at period end).")
    invoice_terms_days: int | None = strawberry.field(
        description="Invoices are sent Net-N (due N days after issue, no card charge); null: the card is charged."
    )
    features: list[str] = strawberry.field(
        description='The features it turns on, for display: "priority_queue", "trial", "rollover", "per_seat", '
        '"custom", "no_generation".'
    )

    @classmethod
    def from_domain(cls, plan: domain.Plan) -> PlanVersion:
        features = {
            "priority_queue": plan.priority_queue, "trial": plan.has_trial, "per_seat": plan.per_seat,
            "rollover": plan.credit_policy is domain.CreditPolicy.ROLLOVER, "custom": plan.custom,
            "no_generation": not plan.generation,
        }  # fmt: skip
        return cls(
            key=plan.key, name=plan.name, description=plan.description, effective_at=plan.effective_at,
            currency=plan.currency, price_monthly=_money(plan.price(domain.Interval.MONTHLY)),
            price_annual=_money(plan.price(domain.Interval.ANNUAL)), per_seat=plan.per_seat,
            credits=Credits(plan.credits), credits_per_seat=Credits(plan.credits_per_seat),
            seats_included=plan.seats_included, kits_included=plan.kits_included,
            extra_kit_price=_money(plan.extra_kit_price), members_max=plan.members_max,
            storage_quota_gb=_money(plan.storage_quota_gb), credit_policy=plan.credit_policy,
            rollover_cap=None if plan.rollover_cap is None else Credits(plan.rollover_cap),
            rollover_cycles=plan.rollover_cycles, bonus_expiry_days=plan.bonus_expiry_days,
            purchased_expiry_days=plan.purchased_expiry_days, trial_days=plan.trial_days,
            trial_months=plan.trial_months, products=_keys(plan.products), at_zero=plan.at_zero,
            generation=plan.generation, media_purge_days=plan.media_purge_days, priority_queue=plan.priority_queue,
            pooled=plan.pooled, custom=plan.custom, rank=plan.rank, invoice_terms_days=plan.invoice_terms_days,
            features=[name for name, on in features.items() if on],
        )  # fmt: skip


@strawberry.type(description="A plan: its versions, and the one in force at the catalog's `at`.")
class Plan:
    key: str
    current: PlanVersion | None = strawberry.field(description="The version in force at `at`; null: none yet.")
    versions: list[PlanVersion] = strawberry.field(description="Every version, oldest first.")


@strawberry.type(description="A version of a credit pack: credits bought once for money.")
class PackVersion:
    key: str
    name: str
    effective_at: datetime
    credits: Credits
    price: Quantity = strawberry.field(description="Money, before any surcharge.")
    price_with_surcharge: Quantity = strawberry.field(description="What is paid: the price plus the surcharge.")
    surcharge_percent: Quantity
    currency: str
    expires_after_days: int | None = strawberry.field(description="The credits' life; null: never expire.")
    products: list[str] | None = strawberry.field(description="The only products its credits pay for; null: all.")
    plans: list[str] | None = strawberry.field(description="The plans it is offered to; null: all.")
    out_of_credit: bool = strawberry.field(description="Offered when a debit is refused for want of credits.")
    signup: bool = strawberry.field(description="Granted free at sign-up.")

    @classmethod
    def from_domain(cls, pack: domain.Pack) -> PackVersion:
        return cls(
            key=pack.key, name=pack.name, effective_at=pack.effective_at, credits=Credits(pack.credits),
            price=Quantity(pack.price), price_with_surcharge=_paid(pack),
            surcharge_percent=Quantity(pack.surcharge_percent), currency=pack.currency,
            expires_after_days=pack.expires_after_days, products=_keys(pack.products), plans=_keys(pack.plans),
            out_of_credit=pack.out_of_credit, signup=pack.signup,
        )  # fmt: skip


@strawberry.type(description="A credit pack: its versions, and the one in force at the catalog's `at`.")
class Pack:
    key: str
    current: PackVersion | None = strawberry.field(description="The version in force at `at`; null: none yet.")
    versions: list[PackVersion] = strawberry.field(description="Every version, oldest first.")


@strawberry.type(description="The catalog: products with their rate versions, plans and packs, as of `at`.")
class Catalog:
    at: datetime = strawberry.field(description="The time `current` versions are in force at.")
    currency: str
    credit_price: Quantity | None = strawberry.field(description="Money per credit, for estimates and reports.")
    products: list[CatalogProduct]
    plans: list[Plan] = strawberry.field(description="By rank of the version in force, then key.")
    packs: list[Pack]

    @classmethod
    def from_domain(cls, catalog: domain.Catalog, at: datetime) -> Catalog:
        return cls(
            at=at,
            currency=catalog.settings.currency,
            credit_price=_money(catalog.settings.credit_price),
            products=[
                _product(versions, catalog.rates.get(key, ())) for key, versions in sorted(catalog.products.items())
            ],
            plans=sorted(
                (_plan(key, versions, at) for key, versions in catalog.plans.items()),
                key=lambda plan: (plan.current.rank if plan.current else -1, plan.key),
            ),
            packs=[_pack(key, versions, at) for key, versions in sorted(catalog.packs.items())],
        )


def _product(versions: Sequence[domain.Product], rates: Sequence[domain.RateVersion]) -> CatalogProduct:
    product = versions[-1]
    ordered = sorted(rates, key=lambda rate: (rate.effective_at, sorted(rate.dimensions.items())))
    return CatalogProduct(
        key=product.key, name=product.name, kind=product.kind, unit=product.unit, effective_at=product.effective_at,
        dimensions=sorted(product.dimensions), rates=[RateVersion.from_domain(rate) for rate in ordered],
    )  # fmt: skip


def _plan(key: str, versions: Sequence[domain.Plan], at: datetime) -> Plan:
    current = domain.Catalog(plans={key: tuple(versions)}).plan_at(key, at)
    return Plan(
        key=key,
        current=None if current is None else PlanVersion.from_domain(current),
        versions=[PlanVersion.from_domain(version) for version in versions],
    )


def _pack(key: str, versions: Sequence[domain.Pack], at: datetime) -> Pack:
    current = domain.Catalog(packs={key: tuple(versions)}).pack_at(key, at)
    return Pack(
        key=key,
        current=None if current is None else PackVersion.from_domain(current),
        versions=[PackVersion.from_domain(version) for version in versions],
    )


@strawberry.type(description='What an intended usage would cost and whether it could be paid now ("Calculate").')
class Estimate:
    credits: Credits = strawberry.field(description="The price in credits at today's rate.")
    affordable: bool = strawberry.field(description="Whether it could be charged now, within budgets and caps.")
    code: str | None = strawberry.field(description="Why not, e.g. INSUFFICIENT_CREDITS or CAP_EXCEEDED.")
    message: str | None
