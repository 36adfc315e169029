"""What every ledger mutation answers: when it returns (`Ack`), and the command's outcome with its
rejection and details. Built from the worker's reply in one place (`CommandOutcome.from_reply`)."""

from __future__ import annotations

import enum
from uuid import UUID

import strawberry

from graphql_api.scalars import Credits, id_of
from ledger.core.entries import Status
from ledger.stream.replies import Reply


@strawberry.enum(description="When a ledger mutation returns.")
class Ack(enum.Enum):
    APPLIED = strawberry.enum_value("applied", description="After the ledger committed it, with the result.")
    QUEUED = strawberry.enum_value("queued", description="As soon as the command is durably queued.")


@strawberry.enum(description="What became of a ledger command.")
class CommandStatus(enum.Enum):
    QUEUED = strawberry.enum_value("queued", description="Durably queued; the ledger applies it shortly.")
    ACCEPTED = strawberry.enum_value("accepted", description="Applied and committed.")
    REJECTED = strawberry.enum_value("rejected", description="Decided and recorded, with no effect on credits.")


@strawberry.type(description="Why the ledger rejected a command.")
class Rejection:
    code: str = strawberry.field(description="Stable reason code, e.g. INSUFFICIENT_CREDITS.")
    message: str = strawberry.field(description="Human-readable explanation.")


@strawberry.type(description="A fact about a command's result, e.g. overageAmount or cost.")
class ResultDetail:
    name: str
    value: str


@strawberry.type(description="The outcome of a ledger mutation.")
class CommandOutcome:
    command_id: strawberry.ID = strawberry.field(description="The id given to this request's command.")
    transaction_id: strawberry.ID | None = strawberry.field(
        description="The journal transaction holding the decision (on a retry: the first request's)."
    )
    status: CommandStatus
    rejection: Rejection | None = strawberry.field(description="Set when status is REJECTED.")
    credits_charged: Credits | None = strawberry.field(description="Credits this usage cost; null while queued.")
    balance_after: Credits | None = strawberry.field(
        description="The balance right after this command; null while queued."
    )
    details: list[ResultDetail] = strawberry.field(
        description=(
            "Command-specific facts: lot_id, hold_id, quote_id, credits, affordable, overage_credits, "
            "overage_amount, cost, currency, credits_per_unit, credits_refunded, amount_refunded."
        )
    )

    def detail(self, name: str) -> str | None:
        return next((d.value for d in self.details if d.name == name), None)

    @strawberry.field(description="The lot this command created (grants, positive adjustments).")
    def lot_id(self) -> strawberry.ID | None:
        return id_of(self.detail("lot_id"))

    @strawberry.field(description="The hold this command placed or acted on.")
    def hold_id(self) -> strawberry.ID | None:
        return id_of(self.detail("hold_id"))

    @strawberry.field(description="The binding quote this command issued.")
    def quote_id(self) -> strawberry.ID | None:
        return id_of(self.detail("quote_id"))

    @classmethod
    def queued(cls, command_id: UUID) -> CommandOutcome:
        return cls(
            command_id=strawberry.ID(str(command_id)),
            transaction_id=None,
            status=CommandStatus.QUEUED,
            rejection=None,
            credits_charged=None,
            balance_after=None,
            details=[],
        )

    @classmethod
    def from_reply(cls, reply: Reply) -> CommandOutcome:
        result = reply.result
        accepted = result.status is Status.ACCEPTED
        return cls(
            command_id=strawberry.ID(str(reply.command_id)),
            transaction_id=strawberry.ID(str(reply.transaction_id)),
            status=CommandStatus.ACCEPTED if accepted else CommandStatus.REJECTED,
            rejection=None if accepted else Rejection(code=result.code or "", message=result.message or ""),
            credits_charged=Credits(result.credits_charged),
            balance_after=Credits(result.balance_after),
            details=[ResultDetail(name=name, value=value) for name, value in sorted(result.details.items())],
        )
