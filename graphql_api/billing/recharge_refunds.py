"""The refund mutation's input and answer, and the call into `ledger.payments.refunds`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.billing.invoices_types import Money
from graphql_api.billing.payments import paying
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.inputs import named_organization, optional_id, printable
from graphql_api.scalars import Credits, id_of
from ledger import constants
from ledger.core import bounds
from ledger.core.validation import check_text
from ledger.payments.refunds import RefundRequest, refund
from ledger.payments.refunds_store import RefundRecord, RefundStatus

strawberry.enum(
    RefundStatus,
    name="RefundStatus",
    description="PENDING: recorded, Stripe's refund on its way. SUCCEEDED: refunded. FAILED: nothing was refunded.",
)


@strawberry.input(description="Refund a payment's purchased credits (name the payment, or the lot it granted).")
class RefundInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    idempotency_key: str = strawberry.field(
        description="Your unique key for this refund: a retry carries it on and refunds nothing twice."
    )
    payment_id: strawberry.ID | None = strawberry.field(default=None, description="The payment (a pack, a recharge, "
                                                        "or an annual plan's invoice).")  # fmt: skip
    lot_id: strawberry.ID | None = strawberry.field(default=None, description="Or the lot: its payment is refunded.")
    reason: str = strawberry.field(default="", description="Why (kept with the refund and the ledger's reversal).")


@strawberry.type(description="A refund: the credits taken back and the money refunded through Stripe, under one id.")
class Refund:
    id: strawberry.ID = strawberry.field(description="The refund id: the ledger's and Stripe's key derive from it.")
    payment_id: strawberry.ID
    status: RefundStatus
    money: Money = strawberry.field(description="Money refunded, in the payment's currency.")
    currency: str
    credits: Credits = strawberry.field(description="Credits taken back (0 for a plan's fee).")
    reason: str
    ledger_transaction_id: strawberry.ID | None = strawberry.field(description="The ledger's reversal.")
    stripe_refund_id: str | None = strawberry.field(description="Stripe's refund (re_...).")
    created_at: datetime

    @classmethod
    def from_domain(cls, record: RefundRecord) -> Refund:
        r = record
        return cls(
            id=strawberry.ID(str(r.id)), payment_id=strawberry.ID(str(r.payment_id)), status=r.status,
            money=Money.of(r.amount, r.currency), currency=r.currency, credits=Credits(r.credits),
            reason=r.reason, created_at=r.created_at or datetime.min, stripe_refund_id=r.stripe_refund_id,
            ledger_transaction_id=id_of(r.ledger_transaction_id),
        )  # fmt: skip


async def refund_of(info: Info, input: RefundInput) -> Refund:
    organization_id = await named_organization(info, input.organization_id)
    payment_id = optional_id(input.payment_id, "paymentId")
    lot_id = optional_id(input.lot_id, "lotId")
    if (payment_id is None) == (lot_id is None):
        raise invalid("name the payment (paymentId) or the lot (lotId), not both")
    reason = input.reason.strip()
    if len(reason) > constants.refund_reason_length_max or not reason.isprintable():
        raise invalid(f"reason must be at most {constants.refund_reason_length_max} printable characters")
    check_text(reason, "reason")
    request = RefundRequest(
        organization_id=organization_id,
        request_key=printable(input.idempotency_key, "idempotencyKey", bounds.IDEMPOTENCY_KEY_LENGTH_MAX),
        payment_id=payment_id,
        lot_id=lot_id,
        reason=reason,
    )
    return Refund.from_domain(await refund(paying(info), request))
