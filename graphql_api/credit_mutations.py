"""Mutations for holds, quotes, transfers, corrections and spending rules: each one command to the
org's ledger, with an idempotency key, answered with a `CommandOutcome`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.ids import parse_id
from graphql_api.mutations import optional_id, require_product
from graphql_api.scalars import Credits, Quantity
from graphql_api.submit import aware, required_time, submit
from graphql_api.types import Ack, CommandOutcome
from ledger.core.commands import (
    AdjustCredits,
    AtZero,
    CaptureHold,
    CreditBack,
    Expire,
    IssueQuote,
    LotKind,
    Payload,
    Period,
    PlaceHold,
    RefundLot,
    ReleaseHold,
    ResetLots,
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.money import ZERO, MicroCredits


@strawberry.input(description="Reserve credits for a job whose cost is known only at its end.")
class PlaceHoldInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description="Credits to reserve.")
    expires_at: datetime = strawberry.field(description="When the hold lapses and releases what it still reserves.")
    idempotency_key: str
    product: str | None = strawberry.field(default=None, description="Needed to capture by quantity.")
    team_id: strawberry.ID | None = None
    user_id: str | None = None
    run_id: str | None = strawberry.field(default=None, description="Your id of the job or agent run.")
    cap: Credits | None = strawberry.field(default=None, description="Most the hold may ever capture.")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Charge part of a job against its hold: an amount of credits or a quantity.")
class CaptureHoldInput:
    organization_id: strawberry.ID
    hold_id: strawberry.ID
    idempotency_key: str
    amount: Credits | None = None
    quantity: Quantity | None = strawberry.field(default=None, description="Priced at the hold's product rate.")
    final: bool = strawberry.field(default=False, description="The job is done: release what is still reserved.")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Release everything a hold still reserves.")
class ReleaseHoldInput:
    organization_id: strawberry.ID
    hold_id: strawberry.ID
    idempotency_key: str
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A binding price: usage naming the quote before it expires is charged this price.")
class IssueQuoteInput:
    organization_id: strawberry.ID
    product: str
    quantity: Quantity
    expires_at: datetime
    idempotency_key: str
    team_id: strawberry.ID | None = None
    user_id: str | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Move credits between the org's shared pool (null) and a team, or between teams.")
class TransferCreditsInput:
    organization_id: strawberry.ID
    amount: Credits
    idempotency_key: str
    from_team_id: strawberry.ID | None = None
    to_team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Take back what is left of a refundable lot.")
class RefundLotInput:
    organization_id: strawberry.ID
    lot_id: strawberry.ID
    idempotency_key: str
    reason: str = ""
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Reverse a usage debit (e.g. a failed job) into the very lots it came from.")
class CreditBackInput:
    organization_id: strawberry.ID
    transaction_id: strawberry.ID = strawberry.field(description="The usage or capture transaction to reverse.")
    idempotency_key: str
    reason: str = ""
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A manual correction: positive adds an adjustment lot, negative removes credits.")
class AdjustCreditsInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description='Signed, e.g. "25" or "-10".')
    reason: str
    idempotency_key: str
    team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="End the usable lots of a kind now (e.g. reset the month's base credits).")
class ResetLotsInput:
    organization_id: strawberry.ID
    idempotency_key: str
    kind: LotKind = LotKind.BASE
    team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="End the lots and holds due by asOf now instead of at the next expiry run.")
class ExpireCreditsInput:
    organization_id: strawberry.ID
    idempotency_key: str
    as_of: datetime | None = strawberry.field(default=None, description="Not in the future; default now.")
    ack: Ack = Ack.APPLIED


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


def _decimal(value: Quantity | None) -> Decimal | None:
    return None if value is None else Decimal(value)


async def _send(info: Info, organization_id: strawberry.ID, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    return await submit(info, parse_id(organization_id, "organizationId"), key, payload, ack)


@strawberry.type
class CreditMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Reserve credits for a job; available = balance - held.",
    )
    async def place_hold(self, info: Info, input: PlaceHoldInput) -> CommandOutcome:
        if input.product is not None:
            await require_product(info, input.product)
        payload = PlaceHold(
            amount=MicroCredits(input.amount),
            expires_at=required_time(input.expires_at, "expiresAt"),
            product=input.product,
            team_id=optional_id(input.team_id, "teamId"),
            user_id=input.user_id,
            run_id=input.run_id,
            cap=None if input.cap is None else MicroCredits(input.cap),
        )
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Charge against a hold; several partial captures, then one final.",
    )
    async def capture_hold(self, info: Info, input: CaptureHoldInput) -> CommandOutcome:
        payload = CaptureHold(
            hold_id=parse_id(input.hold_id, "holdId"),
            amount=None if input.amount is None else MicroCredits(input.amount),
            quantity=_decimal(input.quantity),
            final=input.final,
        )
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)], description="Release a hold without charging anything more."
    )
    async def release_hold(self, info: Info, input: ReleaseHoldInput) -> CommandOutcome:
        payload = ReleaseHold(parse_id(input.hold_id, "holdId"))
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Issue a binding quote (its id is in quoteId) for a later recordUsage.",
    )
    async def issue_quote(self, info: Info, input: IssueQuoteInput) -> CommandOutcome:
        await require_product(info, input.product)
        payload = IssueQuote(
            product=input.product,
            quantity=Decimal(input.quantity),
            expires_at=required_time(input.expires_at, "expiresAt"),
            team_id=optional_id(input.team_id, "teamId"),
            user_id=input.user_id,
        )
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)],
        description="Move credits between the pool and teams, keeping kind, priority and expiry.",
    )
    async def transfer_credits(self, info: Info, input: TransferCreditsInput) -> CommandOutcome:
        payload = TransferCredits(
            amount=MicroCredits(input.amount),
            from_team_id=optional_id(input.from_team_id, "fromTeamId"),
            to_team_id=optional_id(input.to_team_id, "toTeamId"),
        )
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Refund what is left of a refundable lot."
    )
    async def refund_lot(self, info: Info, input: RefundLotInput) -> CommandOutcome:
        payload = RefundLot(parse_id(input.lot_id, "lotId"), input.reason)
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Credit a usage debit back to the lots it came from."
    )
    async def credit_back(self, info: Info, input: CreditBackInput) -> CommandOutcome:
        payload = CreditBack(parse_id(input.transaction_id, "transactionId"), input.reason)
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(extensions=[Authorize(Permission.GRANT)], description="A manual correction with a reason.")
    async def adjust_credits(self, info: Info, input: AdjustCreditsInput) -> CommandOutcome:
        payload = AdjustCredits(MicroCredits(input.amount), input.reason, optional_id(input.team_id, "teamId"))
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="End the usable lots of a kind now: breakage, or the rollover bank.",
    )
    async def reset_lots(self, info: Info, input: ResetLotsInput) -> CommandOutcome:
        payload = ResetLots(input.kind, optional_id(input.team_id, "teamId"))
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Run expiry for one organization now (the expiry job does it every minute).",
    )
    async def expire_credits(self, info: Info, input: ExpireCreditsInput) -> CommandOutcome:
        payload = Expire(aware(input.as_of, "asOf") or datetime.now(UTC))
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Set what debits do at zero: BLOCK, OVERAGE or CREDIT_LIMIT.",
    )
    async def set_spending_policy(self, info: Info, input: SetSpendingPolicyInput) -> CommandOutcome:
        if input.product is not None:
            await require_product(info, input.product)
        payload = SetSpendingPolicy(input.at_zero, input.product, MicroCredits(input.credit_limit))
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Set or remove a team's budget per period."
    )
    async def set_team_budget(self, info: Info, input: SetTeamBudgetInput) -> CommandOutcome:
        amount = None if input.amount is None else MicroCredits(input.amount)
        payload = SetTeamBudget(parse_id(input.team_id, "teamId"), amount, input.period)
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)],
        description="Set a user's spend cap and shared-credit toggle.",
    )
    async def set_member_limits(self, info: Info, input: SetMemberLimitsInput) -> CommandOutcome:
        cap = None if input.cap is None else MicroCredits(input.cap)
        payload = SetMemberLimits(input.user_id, cap, input.period, input.shared_credits)
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Give the org its own rate for a product from a date on."
    )
    async def set_rate(self, info: Info, input: SetRateInput) -> CommandOutcome:
        await require_product(info, input.product)
        payload = SetRate(
            product=input.product,
            effective_at=required_time(input.effective_at, "effectiveAt"),
            credits_per_unit=Decimal(input.credits_per_unit),
            overage_price_per_unit=_decimal(input.overage_price_per_unit),
            cost_per_unit=_decimal(input.cost_per_unit),
            currency=input.currency,
        )
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Set the org's own default priority per lot kind, for lots granted from now on.",
    )
    async def set_kind_priorities(self, info: Info, input: SetKindPrioritiesInput) -> CommandOutcome:
        priorities = {entry.kind: entry.priority for entry in input.priorities}
        if len(priorities) != len(input.priorities):
            raise invalid("name each kind once")
        payload = SetKindPriorities(priorities)
        return await _send(info, input.organization_id, input.idempotency_key, payload, input.ack)
