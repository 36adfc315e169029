"""Payment methods, credit packs and payments (Stripe). Writes need MANAGE_BILLING (Owner and
Billing roles, and the platform); reads need READ. Without a Stripe key configured, everything
that talks to Stripe answers PAYMENTS_NOT_CONFIGURED; the payments already recorded stay readable."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import strawberry

from graphql_api.access.authorize import Authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.billing.payments_types import (
    AttachPaymentMethodInput,
    BuyCreditPackInput,
    BuyCreditPackPayload,
    Payment,
    PaymentMethod,
    PaymentMethodInput,
)
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.inputs import aware, named_organization, printable
from graphql_api.scalars import Credits
from ledger import constants
from ledger.core import bounds
from ledger.payments import methods
from ledger.payments.context import PaymentContext
from ledger.payments.gateway import require_gateway
from ledger.payments.purchases import buy_pack
from ledger.payments.store import PaymentStatus, payments_of
from ledger.subscriptions.effects import LedgerEffects

# Stripe's ids: a prefix, then letters, digits and underscores.
_PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9_]{1,250}")
_FIRST = "How many, newest first: 1 to 100."


def payment_method_id(value: str) -> str:
    if not _PAYMENT_METHOD_ID.fullmatch(value):
        raise invalid("paymentMethodId must be a Stripe payment method id (pm_...), made by Stripe.js")
    return value


def paying(info: Info) -> PaymentContext:
    """Payments for this request (PAYMENTS_NOT_CONFIGURED without a Stripe key)."""
    resources = info.context.resources
    gateway = require_gateway(resources.gateway)
    return PaymentContext(resources.pool, gateway, LedgerEffects(resources.mailbox), datetime.now(UTC))


@strawberry.type
class PaymentQueries:
    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description="The organization's saved cards, the default first (PAYMENTS_NOT_CONFIGURED without Stripe).",
    )
    async def payment_methods(self, info: Info, organization_id: strawberry.ID) -> list[PaymentMethod]:
        org = await named_organization(info, organization_id)
        return [PaymentMethod.from_domain(m) for m in await methods.payment_methods(paying(info), org)]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description="The organization's payments (packs, recharges, invoices), newest first.",
    )
    async def payments(
        self,
        info: Info,
        organization_id: strawberry.ID,
        first: Annotated[int, strawberry.argument(description=_FIRST)] = 20,
        before: Annotated[datetime | None, strawberry.argument(description="Only those created before this.")] = None,
    ) -> list[Payment]:
        if not 1 <= first <= constants.payments_page_max:
            raise invalid(f"first must be 1 to {constants.payments_page_max}")
        org = await named_organization(info, organization_id)
        found = await payments_of(info.context.resources.pool, org, first, aware(before, "before"))
        return [Payment.from_domain(payment) for payment in found]


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Attach a card (a pm_... id from Stripe.js) to the organization; the first one becomes the default. "
            "A card refused by its bank is PAYMENT_DECLINED with extensions.declineCode."
        ),
    )
    async def attach_payment_method(self, info: Info, input: AttachPaymentMethodInput) -> PaymentMethod:
        org = await named_organization(info, input.organization_id)
        method = payment_method_id(input.payment_method_id)
        return PaymentMethod.from_domain(
            await methods.attach_payment_method(paying(info), org, method, input.make_default)
        )

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description="Make one of the organization's cards the default (NOT_FOUND for any other id).",
    )
    async def set_default_payment_method(self, info: Info, input: PaymentMethodInput) -> PaymentMethod:
        org = await named_organization(info, input.organization_id)
        method = payment_method_id(input.payment_method_id)
        return PaymentMethod.from_domain(await methods.set_default_payment_method(paying(info), org, method))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description="Detach one of the organization's cards (NOT_FOUND for any other id).",
    )
    async def detach_payment_method(self, info: Info, input: PaymentMethodInput) -> PaymentMethod:
        org = await named_organization(info, input.organization_id)
        method = payment_method_id(input.payment_method_id)
        return PaymentMethod.from_domain(await methods.detach_payment_method(paying(info), org, method))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Buy a credit pack: its price plus any surcharge, charged to the card given or the default one. "
            "Credits are granted only once the payment succeeded: SUCCEEDED grants them at once; REQUIRES_ACTION "
            "answers the clientSecret to finish authentication with Stripe.js (the credits come when it "
            "succeeds); a declined card is PAYMENT_DECLINED with extensions.declineCode and grants nothing."
        ),
    )
    async def buy_credit_pack(self, info: Info, input: BuyCreditPackInput) -> BuyCreditPackPayload:
        org = await named_organization(info, input.organization_id)
        pack = printable(input.pack, "pack", bounds.PLAN_KEY_LENGTH_MAX)
        key = printable(input.idempotency_key, "idempotencyKey", constants.payment_request_key_length_max)
        method = None if input.payment_method_id is None else payment_method_id(input.payment_method_id)
        payment = await buy_pack(paying(info), org, pack, method, key)
        granted = payment.credits if payment.status is PaymentStatus.SUCCEEDED and payment.lot_id else 0
        return BuyCreditPackPayload(payment=Payment.from_domain(payment), credits_granted=Credits(granted or 0))
