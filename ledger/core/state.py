"""An organization's ledger state as its actor holds it: lots, holds, quotes, spending rules,
rates, and the spend counted against budgets and caps."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, TypeAlias, TypeVar
from uuid import UUID

from ledger.core.commands import (
    DEFAULT_PRIORITY,
    AccessStatus,
    AlertKind,
    AtZero,
    LotKind,
    LotTerms,
    Period,
    RolloverRule,
)
from ledger.core.errors import NotFound
from ledger.core.money import ZERO, MicroCredits

ALL_PRODUCTS = "*"


@dataclass(frozen=True, slots=True)
class Lot:
    """A grant of credits: spent in consumption order until empty, expired or ended."""

    id: UUID
    kind: LotKind
    amount: MicroCredits
    remaining: MicroCredits
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    created_at: datetime
    team_id: UUID | None = None  # None: the org's shared pool
    products: frozenset[str] | None = None  # None: every product
    rollover: RolloverRule | None = None
    terms: LotTerms = field(default_factory=LotTerms)
    parent_id: UUID | None = None  # the lot this one was split from by a transfer or rollover

    def live_at(self, at: datetime) -> bool:
        return self.effective_at <= at and (self.expires_at is None or at < self.expires_at)

    def usable_at(self, at: datetime) -> bool:
        return self.remaining > 0 and self.live_at(at)

    def covers(self, product: str | None) -> bool:
        return self.products is None or product in self.products

    def with_remaining(self, remaining: MicroCredits) -> Lot:
        """This lot with another remaining: what every debit makes, so built directly (a third
        of `dataclasses.replace`'s cost, which walks the fields)."""
        return Lot(
            self.id, self.kind, self.amount, remaining, self.priority, self.effective_at, self.expires_at,
            self.created_at, self.team_id, self.products, self.rollover, self.terms, self.parent_id,
        )  # fmt: skip

    def consumption_key(self) -> tuple[int, int, datetime, datetime, str]:
        """Priority, then soonest expiry (lots that never expire last), then oldest."""
        never = 1 if self.expires_at is None else 0
        return (self.priority, never, self.expires_at or self.created_at, self.created_at, str(self.id))


class HoldStatus(StrEnum):
    OPEN = "open"
    FINISHED = "finished"  # captured with final=true
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Hold:
    """Credits reserved for a running job. `reserved` is what it still keeps others from spending;
    `captured` what it has charged so far."""

    id: UUID
    transaction_id: UUID
    amount: MicroCredits
    reserved: MicroCredits
    captured: MicroCredits
    expires_at: datetime
    placed_at: datetime  # fences are laid oldest first, so a new hold never unsettles an older one
    status: HoldStatus = HoldStatus.OPEN
    product: str | None = None
    team_id: UUID | None = None
    user_id: str | None = None
    run_id: str | None = None
    cap: MicroCredits | None = None

    def open_at(self, at: datetime) -> bool:
        return self.status is HoldStatus.OPEN and at < self.expires_at


@dataclass(frozen=True, slots=True)
class Quote:
    """A binding price for a product, usable once before it expires."""

    id: UUID
    transaction_id: UUID
    product: str
    quantity: Decimal
    credits_per_unit: Decimal
    amount: MicroCredits
    expires_at: datetime
    team_id: UUID | None = None
    user_id: str | None = None
    used_by: UUID | None = None


NO_DIMENSIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of one native unit of a product (a token, a minute, a message) in credits: a
    version of the catalog's rate (from `catalog_rates`) or of the org's own (`SetRate`)."""

    product: str
    credits_per_unit: Decimal
    overage_price_per_unit: Decimal | None = None
    cost_per_unit: Decimal | None = None
    currency: str = "USD"
    effective_at: datetime | None = None  # None: from the start of time
    # A catalog version for events carrying all of these (e.g. {"model": "gpt-4o"}); {}: every event.
    dimensions: Mapping[str, str] = field(default_factory=dict)


class RateVersion(Protocol):
    """What choosing a version needs (the core's `Rate`, billing's `RateVersion`)."""

    @property
    def effective_at(self) -> datetime | None: ...

    @property
    def dimensions(self) -> Mapping[str, str]: ...


_V = TypeVar("_V", bound=RateVersion)
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)


def rate_in_force(versions: Iterable[_V], at: datetime, dimensions: Mapping[str, str]) -> _V | None:
    """The version pricing an event with `dimensions` at `at`: among the versions in force by then
    whose dimensions the event carries (every one of them, with the same value), the most specific
    (most dimensions), and of those the latest. None before the first version: UNKNOWN_PRODUCT."""
    best: _V | None = None
    best_key: tuple[int, datetime] | None = None
    for version in versions:
        effective = version.effective_at or _START_OF_TIME
        if effective > at:
            continue
        named = version.dimensions
        if named and any(dimensions.get(name) != value for name, value in named.items()):
            continue
        key = (len(named), effective)
        if best_key is None or key > best_key:
            best, best_key = version, key
    return best


@dataclass(frozen=True, slots=True)
class Access:
    """What the organization's plan allows (set by billing, `SetAccess`); the default lets an
    organization without a subscription do everything, as before billing."""

    status: AccessStatus = AccessStatus.ACTIVE
    plan: str = ""
    products: frozenset[str] | None = None  # None: every product
    storage_quota_gb: Decimal | None = None  # None: no quota
    priority_queue: bool = False
    suspended: bool = False  # dunning (`SetSuspension`): new spending refused with SUSPENDED
    suspended_reason: str = ""


UNRESTRICTED = Access()


@dataclass(frozen=True, slots=True)
class Policy:
    at_zero: AtZero = AtZero.BLOCK
    credit_limit: MicroCredits = ZERO


@dataclass(frozen=True, slots=True)
class Budget:
    team_id: UUID
    amount: MicroCredits
    period: Period = Period.MONTH


@dataclass(frozen=True, slots=True)
class MemberLimits:
    user_id: str
    cap: MicroCredits | None = None
    period: Period = Period.MONTH
    shared_credits: bool = True


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold the actor judges after every command; `triggered` is whether its condition held
    at the last judgement, so it fires once per crossing."""

    id: UUID
    kind: AlertKind
    threshold: MicroCredits
    counter_id: UUID  # its spend counter: new with each SetAlert, so a replaced alert counts afresh
    set_at: datetime  # when it was set: debits before then are not on its counter
    name: str = ""
    team_id: UUID | None = None
    user_id: str | None = None
    period: Period = Period.MONTH
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class Debit:
    """A committed usage debit, as a credit-back needs it: which lots gave what."""

    transaction_id: UUID
    product: str
    charge: MicroCredits
    lot_legs: tuple[tuple[UUID, MicroCredits], ...]  # (lot, amount taken), in the order taken
    uncovered: MicroCredits  # overage or credit line
    uncovered_account: str | None
    occurred_at: datetime
    team_id: UUID | None = None
    user_id: str | None = None
    reversed: bool = False


# Spend counted against a limit: ("team:<id>" or "user:<id>", start of the period).
SpendKey: TypeAlias = tuple[str, datetime]


def team_scope(team_id: UUID) -> str:
    return f"team:{team_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


def alert_scope(counter_id: UUID) -> str:
    """A spend alert counts on its own counter: its period need not be any budget's or cap's."""
    return f"alert:{counter_id}"


@dataclass(frozen=True, slots=True)
class Balance:
    total: MicroCredits  # usable credits less what the credit line has drawn
    held: MicroCredits

    @property
    def available(self) -> MicroCredits:
        return MicroCredits(self.total - self.held)


@dataclass(frozen=True, slots=True)
class OrgState:
    organization_id: UUID
    lots: tuple[Lot, ...] = ()
    # The catalog's versions for the products the commands price, oldest first.
    rate_card: Mapping[str, tuple[Rate, ...]] = field(default_factory=dict)
    rates: Mapping[str, tuple[Rate, ...]] = field(default_factory=dict)  # the org's versions, oldest first
    holds: Mapping[UUID, Hold] = field(default_factory=dict)
    quotes: Mapping[UUID, Quote] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=dict)  # by product, ALL_PRODUCTS for the default
    budgets: Mapping[UUID, Budget] = field(default_factory=dict)
    members: Mapping[str, MemberLimits] = field(default_factory=dict)
    spend: Mapping[SpendKey, MicroCredits] = field(default_factory=dict)
    credit_drawn: MicroCredits = ZERO
    debits: Mapping[UUID, Debit] = field(default_factory=dict)  # preloaded for credit-backs
    teams: frozenset[UUID] = frozenset()
    kind_priorities: Mapping[LotKind, int] = field(default_factory=dict)  # the org's own defaults
    alerts: Mapping[UUID, Alert] = field(default_factory=dict)
    access: Access = UNRESTRICTED
    storage_used_gb: Decimal = Decimal(0)  # the gauge billing reports (SetStorageUsage)

    def priority_of(self, kind: LotKind) -> int:
        return self.kind_priorities.get(kind, DEFAULT_PRIORITY[kind])

    def balance(self, at: datetime, team_id: UUID | None = None) -> Balance:
        """The org's balance, or (with `team_id`) what that team's own lots and holds hold."""
        lots = self.lots if team_id is None else tuple(lot for lot in self.lots if lot.team_id == team_id)
        total: int = sum(lot.remaining for lot in lots if lot.usable_at(at))
        if team_id is None:
            total -= self.credit_drawn
        holds = self.holds.values()
        held = sum(h.reserved for h in holds if h.open_at(at) and (team_id is None or h.team_id == team_id))
        return Balance(total=MicroCredits(total), held=MicroCredits(held))

    def rate_at(self, product: str, at: datetime, dimensions: Mapping[str, str] = NO_DIMENSIONS) -> Rate | None:
        """The org's own version in force at `at`, else the catalog's (`rate_in_force`)."""
        for version in reversed(self.rates.get(product, ())):
            if version.effective_at is None or version.effective_at <= at:
                return version
        return rate_in_force(self.rate_card.get(product, ()), at, dimensions)

    def policy_for(self, product: str | None) -> Policy:
        if product is not None and product in self.policies:
            return self.policies[product]
        return self.policies.get(ALL_PRODUCTS, Policy())

    def with_lots(self, lots: Iterable[Lot]) -> OrgState:
        # Built directly, not by `dataclasses.replace` (which walks the fields): every command
        # that moves credits makes one.
        return OrgState(
            organization_id=self.organization_id,
            lots=tuple(lots),
            rate_card=self.rate_card,
            rates=self.rates,
            holds=self.holds,
            quotes=self.quotes,
            policies=self.policies,
            budgets=self.budgets,
            members=self.members,
            spend=self.spend,
            credit_drawn=self.credit_drawn,
            debits=self.debits,
            teams=self.teams,
            kind_priorities=self.kind_priorities,
            alerts=self.alerts,
            access=self.access,
            storage_used_gb=self.storage_used_gb,
        )


# `Lot.with_remaining` and `OrgState.with_lots` name every field: a field added must be added there.
assert [f.name for f in fields(Lot)][-1] == "parent_id" and len(fields(Lot)) == 13
assert [f.name for f in fields(OrgState)][-1] == "storage_used_gb" and len(fields(OrgState)) == 17


def require_team(state: OrgState, team_id: UUID | None) -> None:
    if team_id is not None and team_id not in state.teams:
        raise NotFound(f"no team {team_id} in this organization")


def period_start(at: datetime, period: Period) -> datetime:
    """The start, in `at`'s time zone (UTC in practice), of the calendar period holding `at`."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def add_months(at: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))
