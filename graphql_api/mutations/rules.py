"""Mutations that set an organization's spending rules: what debits do at zero, team budgets,
member caps, its own rates and its lot kinds' priorities. Each is one ledger command."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.input_types.rules import (
    SetKindPrioritiesInput,
    SetMemberLimitsInput,
    SetRateInput,
    SetSpendingPolicyInput,
    SetTeamBudgetInput,
)
from graphql_api.inputs import (
    optional_decimal,
    parse_id,
    require_product,
    required_time,
)
from graphql_api.outcomes import CommandOutcome
from graphql_api.submit import submit_to
from ledger.core.commands import (
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetTeamBudget,
)
from ledger.core.money import MicroCredits


@strawberry.type
class RuleMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Set what debits do at zero: BLOCK, OVERAGE or CREDIT_LIMIT.",
    )
    async def set_spending_policy(self, info: Info, input: SetSpendingPolicyInput) -> CommandOutcome:
        if input.product is not None:
            await require_product(info, input.product)
        payload = SetSpendingPolicy(input.at_zero, input.product, MicroCredits(input.credit_limit))
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Set or remove a team's budget per period."
    )
    async def set_team_budget(self, info: Info, input: SetTeamBudgetInput) -> CommandOutcome:
        amount = None if input.amount is None else MicroCredits(input.amount)
        payload = SetTeamBudget(parse_id(input.team_id, "teamId"), amount, input.period)
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)],
        description="Set a user's spend cap and shared-credit toggle.",
    )
    async def set_member_limits(self, info: Info, input: SetMemberLimitsInput) -> CommandOutcome:
        cap = None if input.cap is None else MicroCredits(input.cap)
        payload = SetMemberLimits(input.user_id, cap, input.period, input.shared_credits)
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Give the org its own rate for a product from a date on."
    )
    async def set_rate(self, info: Info, input: SetRateInput) -> CommandOutcome:
        await require_product(info, input.product)
        payload = SetRate(
            product=input.product,
            effective_at=required_time(input.effective_at, "effectiveAt"),
            credits_per_unit=Decimal(input.credits_per_unit),
            overage_price_per_unit=optional_decimal(input.overage_price_per_unit),
            cost_per_unit=optional_decimal(input.cost_per_unit),
            currency=input.currency,
        )
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Set the org's own default priority per lot kind, for lots granted from now on.",
    )
    async def set_kind_priorities(self, info: Info, input: SetKindPrioritiesInput) -> CommandOutcome:
        priorities = {entry.kind: entry.priority for entry in input.priorities}
        if len(priorities) != len(input.priorities):
            raise invalid("name each kind once")
        payload = SetKindPriorities(priorities)
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)
