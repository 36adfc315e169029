"""What the live subscriptions send: meter readings for the organization, a team and a user, and
usage events."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from graphql_api.enums import Period
from graphql_api.outcomes import ResultDetail
from graphql_api.scalars import Credits, Quantity, id_of
from graphql_api.types.history import HISTORY
from ledger.core.meter import LimitUse, TeamMeter, UserMeter
from ledger.core.state import Balance as DomainBalance
from ledger.store.history import UsageDebit


@strawberry.type(description="A live reading of an organization's credits.")
class MeterReading:
    organization_id: strawberry.ID
    total: Credits
    held: Credits
    available: Credits
    at: datetime = strawberry.field(description="When the reading was taken.")

    @classmethod
    def from_balance(cls, organization_id: UUID, balance: DomainBalance, at: datetime) -> MeterReading:
        return cls(
            organization_id=strawberry.ID(str(organization_id)),
            total=Credits(balance.total),
            held=Credits(balance.held),
            available=Credits(balance.available),
            at=at,
        )


@strawberry.type(description="A budget or cap in its current period.")
class LimitReading:
    amount: Credits = strawberry.field(description="Most that may be spent per period.")
    spent: Credits = strawberry.field(description="Spent this period (credit-backs taken off), counted from when set.")
    remaining: Credits = strawberry.field(description="What may still be spent this period.")
    period: Period

    @classmethod
    def from_domain(cls, limit: LimitUse | None) -> LimitReading | None:
        if limit is None:
            return None
        return cls(
            amount=Credits(limit.amount),
            spent=Credits(limit.spent),
            remaining=Credits(limit.remaining),
            period=limit.period,
        )


@strawberry.type(description="A live reading of a team's own credits and its budget.")
class TeamMeterReading:
    organization_id: strawberry.ID
    team_id: strawberry.ID
    total: Credits = strawberry.field(description="Credits in the team's own lots usable now (not the pool).")
    held: Credits = strawberry.field(description="What holds placed for the team reserve.")
    available: Credits = strawberry.field(description="Total less held.")
    free: Credits = strawberry.field(description="The team's lots less what open holds fence on them.")
    budget: LimitReading | None = strawberry.field(description="Its budget this period; null without one.")
    at: datetime = strawberry.field(description="When the ledger applied the change this reading follows.")

    @classmethod
    def from_domain(cls, organization_id: UUID, team_id: UUID, meter: TeamMeter, at: datetime) -> TeamMeterReading:
        return cls(
            organization_id=strawberry.ID(str(organization_id)),
            team_id=strawberry.ID(str(team_id)),
            total=Credits(meter.balance.total),
            held=Credits(meter.balance.held),
            available=Credits(meter.balance.available),
            free=Credits(meter.free),
            budget=LimitReading.from_domain(meter.budget),
            at=at,
        )


@strawberry.type(description="A live reading of what one user may spend.")
class UserMeterReading:
    organization_id: strawberry.ID
    user_id: str
    team_id: strawberry.ID | None = strawberry.field(description="The team whose credits the user spends first.")
    available: Credits = strawberry.field(
        description=(
            "The most the user's next debit could take from credits now: the team's free credits and the "
            "pool's (unless shared credits are off), less what holds fence, within their cap and the team's budget."
        )
    )
    shared_credits: bool = strawberry.field(description="Whether the user may spend the organization's pool.")
    cap: LimitReading | None = strawberry.field(description="The user's cap this period; null without one.")
    team_budget: LimitReading | None = strawberry.field(description="The team's budget this period, if it has one.")
    at: datetime = strawberry.field(description="When the ledger applied the change this reading follows.")

    @classmethod
    def from_domain(
        cls, organization_id: UUID, user_id: str, meter: UserMeter, budget: LimitUse | None, at: datetime
    ) -> UserMeterReading:
        return cls(
            organization_id=strawberry.ID(str(organization_id)),
            user_id=user_id,
            team_id=id_of(meter.team_id),
            available=Credits(meter.available),
            shared_credits=meter.limits.shared_credits,
            cap=LimitReading.from_domain(meter.limits.cap),
            team_budget=LimitReading.from_domain(budget),
            at=at,
        )


@strawberry.type(description="An accepted debit as the ledger journaled it: a usage event or a hold's capture.")
class UsageEvent:
    cursor: str = strawberry.field(
        description="Pass as `after` to resume the stream after this event (also a `transactions` cursor)."
    )
    transaction_id: strawberry.ID
    product: str
    quantity: Quantity | None = strawberry.field(description="In the product's unit; null for a capture by amount.")
    credits: Credits = strawberry.field(description="Credits charged.")
    team_id: strawberry.ID | None
    user_id: str | None
    hold_id: strawberry.ID | None = strawberry.field(description="The hold, for a capture.")
    model: str | None = strawberry.field(description='The event\'s "model" dimension.')
    dimensions: list[ResultDetail] = strawberry.field(description="Every dimension the event carried.")
    occurred_at: datetime
    journaled_at: datetime = strawberry.field(
        description="The journal's time for it: its batch's transaction time, as transactions' createdAt."
    )

    @classmethod
    def from_domain(cls, organization_id: UUID, debit: UsageDebit) -> UsageEvent:
        return cls(
            cursor=HISTORY.encode(organization_id, debit.key),
            transaction_id=strawberry.ID(str(debit.key.id)),
            product=debit.product,
            quantity=None if debit.quantity is None else Quantity(debit.quantity),
            credits=Credits(debit.credits),
            team_id=id_of(debit.team_id),
            user_id=debit.user_id,
            hold_id=id_of(debit.hold_id),
            model=debit.dimensions.get("model"),
            dimensions=[ResultDetail(name=name, value=value) for name, value in sorted(debit.dimensions.items())],
            occurred_at=debit.occurred_at,
            journaled_at=debit.key.committed_at,
        )
