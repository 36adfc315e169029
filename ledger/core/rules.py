"""Spending rules and the org's own rates: commands that change no credits, only what later
debits may do. They go through the actor like everything else, so its state is never stale."""

from __future__ import annotations

from ledger.core.change import Change
from ledger.core.commands import (
    Command,
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetTeamBudget,
)
from ledger.core.entries import Applied
from ledger.core.state import ALL_PRODUCTS, Budget, MemberLimits, OrgState, Policy, Rate, require_team


def set_spending_policy(state: OrgState, command: Command, request: SetSpendingPolicy) -> Applied:
    policies = {**state.policies, request.product or ALL_PRODUCTS: Policy(request.at_zero, request.credit_limit)}
    return _with(state, command, policies=policies)


def set_team_budget(state: OrgState, command: Command, request: SetTeamBudget) -> Applied:
    require_team(state, request.team_id)
    budgets = {team: budget for team, budget in state.budgets.items() if team != request.team_id}
    if request.amount is not None:
        budgets[request.team_id] = Budget(request.team_id, request.amount, request.period)
    return _with(state, command, budgets=budgets)


def set_member_limits(state: OrgState, command: Command, request: SetMemberLimits) -> Applied:
    limits = MemberLimits(request.user_id, request.cap, request.period, request.shared_credits)
    return _with(state, command, members={**state.members, request.user_id: limits})


def set_kind_priorities(state: OrgState, command: Command, request: SetKindPriorities) -> Applied:
    return _with(state, command, kind_priorities={**state.kind_priorities, **request.priorities})


def set_rate(state: OrgState, command: Command, request: SetRate) -> Applied:
    version = Rate(
        product=request.product,
        credits_per_unit=request.credits_per_unit,
        overage_price_per_unit=request.overage_price_per_unit,
        cost_per_unit=request.cost_per_unit,
        currency=request.currency,
        effective_at=request.effective_at,
    )
    versions = [v for v in state.rates.get(request.product, ()) if v.effective_at != request.effective_at]
    versions.append(version)
    versions.sort(key=lambda v: v.effective_at or command.at)
    return _with(state, command, rates={**state.rates, request.product: tuple(versions)})


def _with(state: OrgState, command: Command, **changes: object) -> Applied:
    change = Change(state)
    change.replace_state(**changes)
    return change.applied(command.at)
