"""Usage and what is left to spend: usage summed per time bucket, team budgets and member caps with
their spend this period, and the organization's consumption policy; with the resolvers of the
Organization fields that answer with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.enums import AtZero, BucketSize, GroupKey, LotKind, Period
from graphql_api.errors import invalid
from graphql_api.inputs import required_time
from graphql_api.scalars import Credits, Quantity, id_of
from graphql_api.types.teams import Team
from ledger import constants
from ledger.core.charge import Spender, spend_limits
from ledger.core.commands import DEFAULT_PRIORITY
from ledger.core.money import MicroCredits
from ledger.core.state import ALL_PRODUCTS, OrgState, Policy, SpendKey, period_start
from ledger.store.usage import Grouping, UsageRow, usage_rows


@strawberry.type(
    description=(
        "Usage journaled in one time bucket by one group: accepted usage events and hold captures that "
        "charged something; a debit that was credited back is left out whole."
    )
)
class UsageBucket:
    start: datetime = strawberry.field(description="The bucket's start, in UTC.")
    product: str | None = strawberry.field(description="The product; null when not grouped by PRODUCT.")
    model: str | None = strawberry.field(
        description='The "model" dimension; null when not grouped by MODEL or the events had none.'
    )
    team_id: strawberry.ID | None = strawberry.field(description="The team; null when not grouped by TEAM or none.")
    user_id: str | None = strawberry.field(description="The user; null when not grouped by USER or none.")
    quantity: Quantity = strawberry.field(
        description="Units used, in the product's unit (captures by amount add none); only meaningful per product."
    )
    credits: Credits = strawberry.field(description="Credits charged, overage and credit line included.")
    events: int = strawberry.field(description="How many usage events and captures.")

    @classmethod
    def from_domain(cls, row: UsageRow) -> UsageBucket:
        return cls(
            start=row.start,
            product=row.product,
            model=row.model,
            team_id=id_of(row.team_id),
            user_id=row.user_id,
            quantity=Quantity(row.quantity),
            credits=Credits(row.credits),
            events=row.events,
        )


async def usage_buckets(
    info: Info, organization_id: UUID, start: datetime, end: datetime, bucket: BucketSize, group_by: list[GroupKey]
) -> list[UsageBucket]:
    start, end = required_time(start, "from").astimezone(UTC), required_time(end, "to").astimezone(UTC)
    if not start < end:
        raise invalid("from must be before to")
    if end - start > timedelta(days=constants.usage_range_max_days):
        raise invalid(f"a usage report covers at most {constants.usage_range_max_days} days")
    if _bucket_count(start, end, bucket) > constants.usage_buckets_max:
        raise invalid(f"at most {constants.usage_buckets_max} buckets: use a shorter range or a longer bucket")
    rows = await usage_rows(
        info.context.resources.pool,
        organization_id,
        start,
        end,
        bucket,
        Grouping.of(group_by),
        constants.usage_rows_max + 1,
    )
    if len(rows) > constants.usage_rows_max:
        raise invalid(f"more than {constants.usage_rows_max} buckets and groups: use a shorter range or fewer groups")
    return [UsageBucket.from_domain(row) for row in rows]


def _bucket_count(start: datetime, end: datetime, bucket: BucketSize) -> int:
    """How many buckets [start, end) touches (both in UTC)."""
    last = end - timedelta(microseconds=1)
    if bucket is BucketSize.MONTH:
        return (last.year - start.year) * 12 + last.month - start.month + 1
    if bucket is BucketSize.DAY:
        return (last.date() - start.date()).days + 1
    hour = timedelta(hours=1)
    return (
        last.replace(minute=0, second=0, microsecond=0) - start.replace(minute=0, second=0, microsecond=0)
    ) // hour + 1


@strawberry.type(description="A team's budget and what is left of it in the current period.")
class TeamBudget:
    organization_id: strawberry.Private[UUID]
    team_id: strawberry.ID = strawberry.field(description="The team.")
    period: Period = strawberry.field(description="The calendar period (UTC) the budget counts over.")
    period_start: datetime = strawberry.field(description="When the current period began.")
    amount: Credits = strawberry.field(description="Most the team may spend per period.")
    spent: Credits = strawberry.field(description="Spent this period (credit-backs taken off); counted from when set.")
    remaining: Credits = strawberry.field(description="What the team may still spend this period.")

    @strawberry.field(description="The team itself.")
    async def team(self, info: Info) -> Team | None:
        teams = await info.context.loaders.teams.load(self.organization_id)
        return next((Team.from_domain(team) for team in teams if str(team.id) == self.team_id), None)


@strawberry.type(description="A user's spending limits and what is left of their cap in the current period.")
class MemberCap:
    user_id: str = strawberry.field(description="Your id of the user.")
    period: Period = strawberry.field(description="The calendar period (UTC) the cap counts over.")
    period_start: datetime = strawberry.field(description="When the current period began.")
    cap: Credits | None = strawberry.field(description="Most the user may spend per period; null for no cap.")
    spent: Credits | None = strawberry.field(
        description="Spent this period (credit-backs taken off); null without a cap: spend is only counted under one."
    )
    remaining: Credits | None = strawberry.field(description="What the user may still spend; null without a cap.")
    shared_credits: bool = strawberry.field(description="Whether they may spend the organization's shared pool.")


async def team_budgets_of(info: Info, organization_id: UUID) -> list[TeamBudget]:
    state = await info.context.loaders.spending_rules.load(organization_id)
    now = datetime.now(UTC)
    team_ids = sorted(state.budgets, key=str)
    # The core's own counter for each budget now: the very key its debits count under.
    counters = [spend_limits(state, Spender(now, None, team_id=team_id))[0] for team_id in team_ids]
    spent = await _spent(info, organization_id, [key for key, _, _ in counters])
    return [
        TeamBudget(
            organization_id=organization_id,
            team_id=strawberry.ID(str(team_id)),
            period=state.budgets[team_id].period,
            period_start=key[1],
            amount=Credits(limit),
            spent=Credits(used),
            remaining=Credits(max(limit - used, 0)),
        )
        for team_id, (key, limit, _), used in zip(team_ids, counters, spent, strict=True)
    ]


async def member_caps_of(info: Info, organization_id: UUID) -> list[MemberCap]:
    state = await info.context.loaders.spending_rules.load(organization_id)
    now = datetime.now(UTC)
    members = [state.members[user_id] for user_id in sorted(state.members)]
    # Spend is counted only under a cap: a member without one has no counter.
    counters = {m.user_id: spend_limits(state, Spender(now, None, user_id=m.user_id)) for m in members}
    capped = [(user_id, counted[0]) for user_id, counted in counters.items() if counted]
    spent = await _spent(info, organization_id, [key for _, (key, _, _) in capped])
    used = {user_id: (limit, amount) for (user_id, (_, limit, _)), amount in zip(capped, spent, strict=True)}
    answers = []
    for member in members:
        cap = spent_now = remaining = None
        if member.user_id in used:
            limit, amount = used[member.user_id]
            cap, spent_now, remaining = Credits(limit), Credits(amount), Credits(max(limit - amount, 0))
        answers.append(
            MemberCap(
                user_id=member.user_id,
                period=member.period,
                period_start=period_start(now, member.period),
                cap=cap,
                spent=spent_now,
                remaining=remaining,
                shared_credits=member.shared_credits,
            )
        )
    return answers


async def _spent(info: Info, organization_id: UUID, keys: list[SpendKey]) -> list[MicroCredits]:
    """Every counter at once, batched with any other budget or cap read in the same request."""
    return await info.context.loaders.spend.load_many([(organization_id, key) for key in keys])


@strawberry.type(description="The priority lots of a kind get when granted without one (lower is consumed first).")
class KindPriority:
    kind: LotKind = strawberry.field(description="The lot kind.")
    priority: int = strawberry.field(description="The priority new grants of this kind get in this organization.")
    default_priority: int = strawberry.field(description="The house default for the kind.")
    overridden: bool = strawberry.field(description="Whether the organization set its own (setKindPriorities).")


@strawberry.type(description="What a debit does when the credits it may use cannot cover it.")
class SpendingPolicy:
    product: str | None = strawberry.field(description="The product it is for; null for every product without its own.")
    at_zero: AtZero = strawberry.field(description="BLOCK, OVERAGE or CREDIT_LIMIT.")
    credit_limit: Credits = strawberry.field(description="For CREDIT_LIMIT: how far below zero the balance may go.")

    @classmethod
    def from_domain(cls, product: str | None, policy: Policy) -> SpendingPolicy:
        return cls(product=product, at_zero=policy.at_zero, credit_limit=Credits(policy.credit_limit))


@strawberry.type(description="How the organization's credits are consumed and what happens at zero.")
class ConsumptionPolicy:
    kind_priorities: list[KindPriority] = strawberry.field(
        description="Every lot kind's priority for new grants, in consumption order (a grant's own priority wins)."
    )
    default: SpendingPolicy = strawberry.field(
        description="What products without their own policy do at zero (BLOCK unless the organization set one)."
    )
    products: list[SpendingPolicy] = strawberry.field(description="The organization's per-product policies.")
    credit_drawn: Credits = strawberry.field(
        description="What the organization has drawn on its credit line (the next grants repay it first)."
    )


async def consumption_policy_of(info: Info, organization_id: UUID) -> ConsumptionPolicy:
    state: OrgState = await info.context.loaders.spending_rules.load(organization_id)
    kinds = sorted(LotKind, key=lambda kind: (state.priority_of(kind), list(LotKind).index(kind)))
    return ConsumptionPolicy(
        kind_priorities=[
            KindPriority(
                kind=kind,
                priority=state.priority_of(kind),
                default_priority=DEFAULT_PRIORITY[kind],
                overridden=kind in state.kind_priorities,
            )
            for kind in kinds
        ],
        default=SpendingPolicy.from_domain(None, state.policy_for(None)),
        products=[
            SpendingPolicy.from_domain(product, policy)
            for product, policy in sorted(state.policies.items())
            if product != ALL_PRODUCTS
        ],
        credit_drawn=Credits(state.credit_drawn),
    )
