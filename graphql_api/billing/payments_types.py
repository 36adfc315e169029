"""Payment methods, payments and buying a pack as the API shows them. Amounts are `Money` (exact
major units, integer minor units as a string, the currency); credits are `Credits`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.billing.invoices_types import Money
from graphql_api.scalars import Credits, id_of
from ledger.payments.methods import PaymentMethod as DomainPaymentMethod
from ledger.payments.store import Payment as DomainPayment
from ledger.payments.store import PaymentStatus, Purpose

strawberry.enum(
    PaymentStatus,
    name="PaymentStatus",
    description="CREATING: Stripe has not answered yet. PROCESSING: the bank is deciding. REQUIRES_ACTION: the "
    "cardholder must authenticate (finish it with Stripe.js and `clientSecret`). SUCCEEDED: paid; what it buys "
    "is granted. FAILED: declined (`declineCode`); nothing granted. CANCELED: abandoned; nothing granted.",
)
strawberry.enum(Purpose, name="PaymentPurpose", description="What a payment pays for.")


@strawberry.type(description="A card saved with Stripe for an organization; no card data is kept by us.")
class PaymentMethod:
    id: strawberry.ID = strawberry.field(description="Stripe's payment method id (pm_...).")
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool = strawberry.field(description="What packs, auto-recharge and invoices charge.")

    @classmethod
    def from_domain(cls, found: DomainPaymentMethod) -> PaymentMethod:
        m = found.method
        return cls(id=strawberry.ID(m.id), brand=m.brand, last4=m.last4, exp_month=m.exp_month,
                   exp_year=m.exp_year, is_default=found.is_default)  # fmt: skip


@strawberry.type(description="One charge of a card: for a pack, an auto-recharge or an invoice.")
class Payment:
    id: strawberry.ID
    status: PaymentStatus
    purpose: Purpose
    money: Money = strawberry.field(description="What it charges (or charged).")
    pack: str | None = strawberry.field(description="The pack's key (packs and recharges).")
    credits: Credits | None = strawberry.field(description="What it grants once it succeeded.")
    credits_granted: Credits = strawberry.field(description="What it has granted: its credits once it succeeded.")
    decline_code: str | None = strawberry.field(description="Stripe's reason for a decline, e.g. card_declined.")
    failure_message: str | None
    client_secret: str | None = strawberry.field(
        description="While REQUIRES_ACTION, in the answer that made it: for Stripe.js to finish authentication."
    )
    next_action_type: str | None = strawberry.field(description="While REQUIRES_ACTION: e.g. use_stripe_sdk.")
    payment_intent_id: str | None = strawberry.field(description="Stripe's PaymentIntent (pi_...), once made.")
    invoice_id: strawberry.ID | None
    refunded: Money = strawberry.field(description="What was refunded of it so far.")
    created_at: datetime
    succeeded_at: datetime | None

    @classmethod
    def from_domain(cls, payment: DomainPayment) -> Payment:
        p = payment
        granted = p.credits if p.credits is not None and p.lot_id is not None else 0
        return cls(
            id=strawberry.ID(str(p.id)), status=p.status, purpose=p.purpose, money=Money.of(p.amount, p.currency),
            pack=p.pack_key, credits=None if p.credits is None else Credits(p.credits),
            credits_granted=Credits(granted),
            decline_code=p.decline_code, failure_message=p.failure_message, client_secret=p.client_secret,
            next_action_type=p.next_action_type, payment_intent_id=p.payment_intent_id, invoice_id=id_of(p.invoice_id),
            refunded=Money.of(p.refunded_amount, p.currency), created_at=p.created_at, succeeded_at=p.succeeded_at,
        )  # fmt: skip


@strawberry.input(description="Attach a card to the organization, by the payment method id Stripe.js made.")
class AttachPaymentMethodInput:
    organization_id: strawberry.ID
    payment_method_id: str = strawberry.field(description="pm_... from Stripe.js (card data never reaches us).")
    make_default: bool = strawberry.field(default=False, description="Make it the default (the first card is).")


@strawberry.input(description="One of the organization's cards.")
class PaymentMethodInput:
    organization_id: strawberry.ID
    payment_method_id: str


@strawberry.input(description="Buy a credit pack of the catalog with a card.")
class BuyCreditPackInput:
    organization_id: strawberry.ID
    pack: str = strawberry.field(description='The pack\'s key, e.g. "act3-out-of-credit"; offered to the plan.')
    idempotency_key: str = strawberry.field(
        description="Your unique key for this purchase: a retry answers the same payment and never charges twice."
    )
    payment_method_id: str | None = strawberry.field(
        default=None, description="The card to charge (one of the organization's); default: its default card."
    )


@strawberry.type(description="What buying a pack did: the payment, and the credits granted (once it succeeded).")
class BuyCreditPackPayload:
    payment: Payment
    credits_granted: Credits = strawberry.field(description="0 until the payment succeeded.")
