"""Mutations that move credits: grants, usage (one event or a batch), holds, quotes, transfers,
refunds and corrections. Each is one command to the organization's ledger, with an idempotency key,
answered with a `CommandOutcome`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from graphql_api.access.authorize import Authorize, batch_organizations
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.credits import (
    AdjustCreditsInput,
    CaptureHoldInput,
    CreditBackInput,
    ExpireCreditsInput,
    GrantCreditsInput,
    IssueQuoteInput,
    PlaceHoldInput,
    RecordUsageBatchInput,
    RecordUsageInput,
    RefundLotInput,
    ReleaseHoldInput,
    ResetLotsInput,
    TransferCreditsInput,
)
from graphql_api.inputs import (
    aware,
    optional_decimal,
    optional_id,
    parse_id,
    require_product,
    required_time,
)
from graphql_api.outcomes import CommandOutcome
from graphql_api.submit import submit, submit_many, submit_to
from graphql_api.usage_events import checked_usage, usage_payload
from ledger.core.commands import (
    AdjustCredits,
    CaptureHold,
    CreditBack,
    Expire,
    GrantCredits,
    IssueQuote,
    LotTerms,
    PlaceHold,
    RefundLot,
    ReleaseHold,
    ResetLots,
    RolloverRule,
    TransferCredits,
)
from ledger.core.money import MicroCredits


@strawberry.type
class CreditMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Grant credits to an organization (or one of its teams) as a new credit lot.",
    )
    async def grant_credits(self, info: Info, input: GrantCreditsInput) -> CommandOutcome:
        payload = GrantCredits(
            amount=MicroCredits(input.amount),
            kind=input.kind,
            priority=input.priority,
            effective_at=aware(input.effective_at, "effectiveAt"),
            expires_at=aware(input.expires_at, "expiresAt"),
            team_id=optional_id(input.team_id, "teamId"),
            products=None if input.products is None else frozenset(input.products),
            rollover=None
            if input.rollover is None
            else RolloverRule(MicroCredits(input.rollover.cap), input.rollover.cycles),
            terms=LotTerms(
                source=input.source,
                refundable=input.refundable,
                revenue_treatment=input.revenue_treatment,
                price_per_credit=None if input.price_per_credit is None else Decimal(input.price_per_credit),
                currency=input.currency,
            ),
        )
        organization_id = parse_id(input.organization_id, "organizationId")
        return await submit(info, organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Record one usage event: priced, then debited in consumption order.",
    )
    async def record_usage(self, info: Info, input: RecordUsageInput) -> CommandOutcome:
        organization_id = parse_id(input.organization_id, "organizationId")
        await require_product(info, input.product)
        payload = usage_payload(info.context, input)
        return await submit(info, organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE, batch_organizations)],
        description=(
            "Record many usage events in one request, each with its own idempotency key. All are checked "
            "first: one bad event rejects the request and queues nothing."
        ),
    )
    async def record_usage_batch(self, info: Info, input: RecordUsageBatchInput) -> list[CommandOutcome]:
        return await submit_many(info, await checked_usage(info.context, input.events), input.ack)

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
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Charge against a hold; several partial captures, then one final.",
    )
    async def capture_hold(self, info: Info, input: CaptureHoldInput) -> CommandOutcome:
        payload = CaptureHold(
            hold_id=parse_id(input.hold_id, "holdId"),
            amount=None if input.amount is None else MicroCredits(input.amount),
            quantity=optional_decimal(input.quantity),
            final=input.final,
        )
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)], description="Release a hold without charging anything more."
    )
    async def release_hold(self, info: Info, input: ReleaseHoldInput) -> CommandOutcome:
        payload = ReleaseHold(parse_id(input.hold_id, "holdId"))
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

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
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

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
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Refund what is left of a refundable lot."
    )
    async def refund_lot(self, info: Info, input: RefundLotInput) -> CommandOutcome:
        payload = RefundLot(parse_id(input.lot_id, "lotId"), input.reason)
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)], description="Credit a usage debit back to the lots it came from."
    )
    async def credit_back(self, info: Info, input: CreditBackInput) -> CommandOutcome:
        payload = CreditBack(parse_id(input.transaction_id, "transactionId"), input.reason)
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(extensions=[Authorize(Permission.GRANT)], description="A manual correction with a reason.")
    async def adjust_credits(self, info: Info, input: AdjustCreditsInput) -> CommandOutcome:
        payload = AdjustCredits(MicroCredits(input.amount), input.reason, optional_id(input.team_id, "teamId"))
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="End the usable lots of a kind now: breakage, or the rollover bank.",
    )
    async def reset_lots(self, info: Info, input: ResetLotsInput) -> CommandOutcome:
        payload = ResetLots(input.kind, optional_id(input.team_id, "teamId"))
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Run expiry for one organization now (the expiry job does it every minute).",
    )
    async def expire_credits(self, info: Info, input: ExpireCreditsInput) -> CommandOutcome:
        payload = Expire(aware(input.as_of, "asOf") or datetime.now(UTC))
        return await submit_to(info, input.organization_id, input.idempotency_key, payload, input.ack)
