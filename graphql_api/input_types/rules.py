"""Inputs of the spending-rule mutations: policy, budgets, caps, rates, priorities."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.enums import AtZero, LotKind, Period
from graphql_api.outcomes import Ack
from graphql_api.scalars import Credits, Quantity
from ledger.core.money import ZERO


@strawberry.input(description="What debits do at zero, for one product or (product null) all without their own.")
class SetSpendingPolicyInput:
    organization_id: strawberry.ID
    at_zero: AtZero
    idempotency_key: str
    product: str | None = None
    credit_limit: Credits = strawberry.field(default=Credits(ZERO), description="For CREDIT_LIMIT: how far below zero.")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Most a team may spend per period; amount null removes the budget.")
class SetTeamBudgetInput:
    organization_id: strawberry.ID
    team_id: strawberry.ID
    amount: Credits | None
    idempotency_key: str
    period: Period = Period.MONTH
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A user's spend cap per period and whether they may spend the org's shared pool.")
class SetMemberLimitsInput:
    organization_id: strawberry.ID
    user_id: str
    idempotency_key: str
    cap: Credits | None = None
    period: Period = Period.MONTH
    shared_credits: bool = True
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A version of the org's own rate for a catalog product, in force from effectiveAt.")
class SetRateInput:
    organization_id: strawberry.ID
    product: str
    effective_at: datetime
    credits_per_unit: Quantity
    idempotency_key: str
    overage_price_per_unit: Quantity | None = None
    cost_per_unit: Quantity | None = None
    currency: str = "USD"
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A lot kind and the priority its new lots get (lower is consumed first).")
class KindPriorityInput:
    kind: LotKind
    priority: int


@strawberry.input(description="The org's consumption order: default priorities per lot kind.")
class SetKindPrioritiesInput:
    organization_id: strawberry.ID
    priorities: list[KindPriorityInput]
    idempotency_key: str
    ack: Ack = Ack.APPLIED
