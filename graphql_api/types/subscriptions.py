"""An organization's subscription as the API shows it: its plan and features, periods, kits, and
the proration a seat or plan change charges and grants (the same type for a preview and a change)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.enums import Interval, SubscriptionStatus
from graphql_api.errors import invalid
from graphql_api.inputs import aware, load_organization, parse_id, printable
from graphql_api.scalars import Credits
from ledger import constants
from ledger.billing.calendar import Period
from ledger.billing.catalog import Catalog, Plan
from ledger.billing.proration import Proration as DomainProration
from ledger.billing.proration import ProrationLine as DomainProrationLine
from ledger.billing.subscription import Subscription as DomainSubscription
from ledger.core import bounds
from ledger.subscriptions import plan_changes
from ledger.subscriptions import seats as seat_changes
from ledger.subscriptions.kits import kit_usage
from ledger.subscriptions.store import latest_subscriptions_of_orgs


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@strawberry.type(description="A plan version as a subscription uses it (the catalog query shows them all).")
class SubscriptionPlan:
    key: str = strawberry.field(description='The plan\'s key, e.g. "meclabs-sell".')
    name: str = strawberry.field(description="Display name.")
    rank: int = strawberry.field(description="Higher is an upgrade: it applies at once; lower at the period's end.")
    currency: str = strawberry.field(description="ISO 4217 currency of its prices.")
    price_monthly: str | None = strawberry.field(description="Price per month (per seat when perSeat); null: none.")
    price_annual: str | None = strawberry.field(description="Price per year (per seat when perSeat); null: none.")
    per_seat: bool = strawberry.field(description="Whether the price is per seat.")
    custom: bool = strawberry.field(description="Priced by contract and invoiced (Enterprise).")
    generation: bool = strawberry.field(description="False: usage is refused (Archive); reads and history stay.")
    effective_at: datetime = strawberry.field(description="When this version came into force.")

    @classmethod
    def from_domain(cls, plan: Plan) -> SubscriptionPlan:
        return cls(
            key=plan.key, name=plan.name, rank=plan.rank, currency=plan.currency,
            price_monthly=money(plan.price(Interval.MONTHLY)), price_annual=money(plan.price(Interval.ANNUAL)),
            per_seat=plan.per_seat, custom=plan.custom, generation=plan.generation, effective_at=plan.effective_at,
        )  # fmt: skip


@strawberry.type(description="What the plan gives: limits and features the client can read.")
class PlanFeatures:
    members_max: int | None = strawberry.field(description="Most members; null for unlimited.")
    kits_included: int | None = strawberry.field(description="Kits included; null for unlimited.")
    extra_kit_price: str | None = strawberry.field(description="Per kit beyond those included, per billing period.")
    storage_quota_gb: str | None = strawberry.field(description="Storage quota in GB; null for none.")
    priority_queue: bool = strawberry.field(description="Whether its jobs go to the priority queue.")
    products: list[str] | None = strawberry.field(description="The only products its credits and usage are for.")
    monthly_credits: Credits = strawberry.field(description="Base credits a month: its own plus per seat x seats.")
    credits_per_seat: Credits = strawberry.field(description="Credits a month per seat.")
    credit_policy: str = strawberry.field(
        description="What unused base credits do at a period's end: reset or rollover."
    )

    @classmethod
    def from_domain(cls, plan: Plan, seats: int) -> PlanFeatures:
        return cls(
            members_max=plan.members_max, kits_included=plan.kits_included,
            extra_kit_price=money(plan.extra_kit_price), storage_quota_gb=money(plan.storage_quota_gb),
            priority_queue=plan.priority_queue, products=None if plan.products is None else sorted(plan.products),
            monthly_credits=Credits(plan.credits + plan.credits_per_seat * seats),
            credits_per_seat=Credits(plan.credits_per_seat), credit_policy=plan.credit_policy.value,
        )  # fmt: skip


@strawberry.type(description="Kits (members' assigned seats) counted against the plan.")
class KitCount:
    included: int | None = strawberry.field(description="Kits the plan includes; null for unlimited.")
    used: int = strawberry.field(description="Members holding a kit now.")
    extra: int = strawberry.field(description="Kits beyond those included: each charged extraPrice a period.")
    extra_price: str | None = strawberry.field(description="Per extra kit per billing period; null: refused.")
    extra_amount: str = strawberry.field(description="extra x extraPrice: the kits line of a period's charges.")


@strawberry.type(description="A period of a subscription, half-open: [start, end), in UTC.")
class SubscriptionPeriod:
    index: int = strawberry.field(description="0 for the first, from the anchor.")
    start: datetime
    end: datetime

    @classmethod
    def from_domain(cls, period: Period) -> SubscriptionPeriod:
        return cls(index=period.index, start=period.start, end=period.end)


@strawberry.type(description="An organization's subscription to a plan.")
class PlanSubscription:
    id: strawberry.ID
    interval: Interval = strawberry.field(description="How often it is billed; credits come monthly.")
    seats: int = strawberry.field(description="Seats now.")
    status: SubscriptionStatus
    anchor: datetime = strawberry.field(description="Its first period's start: every period is computed from it.")
    timezone: str = strawberry.field(description="The IANA time zone its periods are computed in.")
    trial_ends_at: datetime | None = strawberry.field(description="When its trial ends (stops generation).")
    cancel_at_period_end: bool = strawberry.field(description="Whether it ends at the current period's end.")
    ends_at: datetime | None = strawberry.field(description="When it ends (cancelled), or ended.")
    media_purge_at: datetime | None = strawberry.field(description="Archive: when its media is purged.")
    plan: SubscriptionPlan = strawberry.field(description="The plan in force now.")
    pending_plan: SubscriptionPlan | None = strawberry.field(description="A change waiting for the period's end.")
    current_period: SubscriptionPeriod = strawberry.field(description="The billing period holding now.")
    current_credit_period: SubscriptionPeriod = strawberry.field(description="The month of credits holding now.")
    next_renewal_at: datetime | None = strawberry.field(description="The next billing period's start; null if ending.")
    features: PlanFeatures = strawberry.field(description="What the plan gives.")
    _subscription: strawberry.Private[DomainSubscription]
    _plan: strawberry.Private[Plan]

    @strawberry.field(description="Kits assigned to members, against those the plan includes.")
    async def kits(self, info: Info) -> KitCount:
        limits = await info.context.loaders.limits.load(self._subscription.organization_id)
        usage = kit_usage(self._plan, limits.kits)
        return KitCount(included=usage.included, used=usage.used, extra=usage.extra,
                        extra_price=money(usage.extra_price), extra_amount=str(usage.extra_amount))  # fmt: skip

    @strawberry.field(description="Its billing periods that have started, newest first.")
    def periods(
        self, first: Annotated[int, strawberry.argument(description="How many, 1 to 200.")] = 12
    ) -> list[SubscriptionPeriod]:
        if not 1 <= first <= constants.page_size_max:
            raise invalid(f"first must be 1 to {constants.page_size_max}")
        calendar, ends_at = self._subscription.billing_calendar, self._subscription.ends_at
        now = datetime.now(UTC)
        at = now if ends_at is None or ends_at > now else ends_at - timedelta(microseconds=1)
        if at < calendar.boundary(0):
            return []
        last = calendar.index_at(at)
        return [SubscriptionPeriod.from_domain(calendar.period(i)) for i in range(last, max(-1, last - first), -1)]

    @classmethod
    def from_domain(cls, subscription: DomainSubscription, catalog: Catalog, now: datetime) -> PlanSubscription:
        s = subscription
        plan = _plan_at(catalog, s.plan_key, now)
        pending = None if s.pending_plan_key is None else _plan_at(catalog, s.pending_plan_key, now)
        period = s.billing_calendar.period_at(now)
        ending = s.cancel_at_period_end or s.ends_at is not None
        return cls(
            id=strawberry.ID(str(s.id)), interval=s.interval, seats=s.seats, status=s.status, anchor=s.anchor,
            timezone=s.timezone, trial_ends_at=s.trial_ends_at, cancel_at_period_end=s.cancel_at_period_end,
            ends_at=s.ends_at, media_purge_at=s.media_purge_at, plan=SubscriptionPlan.from_domain(plan),
            pending_plan=None if pending is None else SubscriptionPlan.from_domain(pending),
            current_period=SubscriptionPeriod.from_domain(period),
            current_credit_period=SubscriptionPeriod.from_domain(s.credit_calendar.period_at(now)),
            next_renewal_at=None if ending else period.end, features=PlanFeatures.from_domain(plan, s.seats),
            _subscription=s, _plan=plan,
        )  # fmt: skip


def _plan_at(catalog: Catalog, key: str, at: datetime) -> Plan:
    # A subscription's plan was in the catalog when chosen and versions are never removed; the
    # earliest version answers for a time before every version's start.
    plan = catalog.plan_at(key, at)
    if plan is None:
        plan = min(catalog.plans[key], key=lambda version: version.effective_at)
    return plan


@strawberry.type(description="One line of a proration: the same in a preview and in the change it previews.")
class ProrationLine:
    kind: str = strawberry.field(description="seats or proration, as on the charge it becomes.")
    description: str
    quantity: str = strawberry.field(description="Seats, or 1 for a plan.")
    unit_price: str = strawberry.field(description="Per unit for a whole billing period, before the fraction.")
    money: str = strawberry.field(
        description="What it charges in the currency, rounded half-up to the minor unit; negative: a credit."
    )
    credits: Credits = strawberry.field(description="Credits granted; negative: taken back.")

    @classmethod
    def from_domain(cls, line: DomainProrationLine) -> ProrationLine:
        return cls(kind=line.kind, description=line.description, quantity=str(line.quantity),
                   unit_price=str(line.unit_price), money=str(line.amount), credits=Credits(line.credits))  # fmt: skip


@strawberry.type(description="What a seat or plan change charges and grants, and when it applies.")
class Proration:
    at: datetime = strawberry.field(description="When the change is made; fractions are computed from it.")
    effective_at: datetime = strawberry.field(description="When it applies: now, or the billing period's end.")
    immediate: bool = strawberry.field(description="True: applies at once (seats, upgrades).")
    plan_before: SubscriptionPlan
    plan_after: SubscriptionPlan
    seats_before: int
    seats_after: int
    billing_period: SubscriptionPeriod = strawberry.field(description="The period the money is prorated over.")
    credit_period: SubscriptionPeriod = strawberry.field(description="The month the credits are prorated over.")
    billing_fraction: str = strawberry.field(description='What is left of the billing period, e.g. "1/2".')
    credit_fraction: str = strawberry.field(description='What is left of the month, e.g. "1/2".')
    money: str = strawberry.field(description="The lines' money, summed: charged, or credited when negative.")
    credits: Credits = strawberry.field(description="The lines' credits, summed: granted, or taken back.")
    currency: str
    lines: list[ProrationLine]

    @classmethod
    def from_domain(cls, p: DomainProration) -> Proration:
        return cls(
            at=p.at, effective_at=p.effective_at, immediate=p.immediate,
            plan_before=SubscriptionPlan.from_domain(p.plan_before),
            plan_after=SubscriptionPlan.from_domain(p.plan_after), seats_before=p.seats_before,
            seats_after=p.seats_after, billing_period=SubscriptionPeriod.from_domain(p.billing_period),
            credit_period=SubscriptionPeriod.from_domain(p.credit_period),
            billing_fraction=str(p.billing_fraction), credit_fraction=str(p.credit_fraction), money=str(p.amount),
            credits=Credits(p.credits), currency=p.currency, lines=[ProrationLine.from_domain(x) for x in p.lines],
        )  # fmt: skip


@strawberry.type(description="A seat or plan change made: the subscription after it, and its proration.")
class SubscriptionChange:
    subscription: PlanSubscription
    proration: Proration
    change_id: strawberry.ID | None = strawberry.field(description="The change's id; null when nothing was recorded.")


async def subscription_of(info: Info, organization_id: UUID, now: datetime) -> PlanSubscription | None:
    """The org's live subscription, else its latest ended one, else None."""
    pool = info.context.resources.pool
    found = (await latest_subscriptions_of_orgs(pool, [organization_id])).get(organization_id)
    return (
        None if found is None else PlanSubscription.from_domain(found, await info.context.loaders.catalog.load(), now)
    )


def proration_at(value: datetime | None) -> datetime | None:
    """A client's proration time: a preview's `at`, at most PRORATION_AT_AGE_MAX old (None: now)."""
    if value is None:
        return None
    checked = aware(value, "prorationAt")
    bounds.check_window(checked, "prorationAt", datetime.now(UTC), bounds.PRORATION_AT_AGE_MAX, bounds.CLOCK_SKEW_MAX)
    return checked


async def preview_plan_change_of(
    info: Info, organization_id: strawberry.ID, plan: str, interval: Interval | None, at: datetime | None
) -> Proration:
    """What changePlan would do (the same computation), writing nothing."""
    organization = parse_id(organization_id, "organizationId")
    key = printable(plan, "plan", bounds.PLAN_KEY_LENGTH_MAX)
    checked = proration_at(at)
    await load_organization(info, organization)
    resources = info.context.resources  # the mailbox: the turnover due by then is applied first
    shown = await plan_changes.preview_plan_change(
        resources.pool, organization, key, interval, checked, effects=resources.mailbox
    )
    return Proration.from_domain(shown)


async def preview_seat_change_of(
    info: Info, organization_id: strawberry.ID, seats: int, at: datetime | None
) -> Proration:
    """What setSeats would do (the same computation), writing nothing."""
    organization = parse_id(organization_id, "organizationId")
    checked = proration_at(at)
    await load_organization(info, organization)
    resources = info.context.resources  # the mailbox: the turnover due by then is applied first
    shown = await seat_changes.preview_seats(resources.pool, organization, seats, checked, effects=resources.mailbox)
    return Proration.from_domain(shown)
