"""Invoices: an organization's list, one invoice by id, and paying one now.

`invoices` needs READ on the organization; `invoice(id)` READ on the invoice's organization, and
answers NOT_FOUND for an id that is none of the caller's (another tenant's invoice is not confirmed
to exist); `payInvoice` needs MANAGE_BILLING (Owner, Billing, the platform)."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from graphql_api.access.authorize import Authorize, authorize, from_argument, nowhere
from graphql_api.access.policy import Permission
from graphql_api.billing.invoices_types import Invoice, PayInvoiceInput
from graphql_api.billing.payments import paying, payment_method_id
from graphql_api.billing.payments_types import Payment
from graphql_api.context import Info
from graphql_api.errors import ApiError, invalid, not_found
from graphql_api.inputs import named_organization, parse_id, printable
from ledger import constants
from ledger.billing import invoice as domain
from ledger.core import bounds
from ledger.invoicing import store
from ledger.invoicing.pay import pay_invoice


def _shown(info: Info, invoice: domain.Invoice) -> Invoice:
    return Invoice.from_domain(invoice, info.context.resources.authenticator.token_secret, datetime.now(UTC))


@strawberry.type(
    description="What paying an invoice did: the invoice as it stands, and its payment (null for an invoice paid "
    "without one). payment.status REQUIRES_ACTION: finish 3-D Secure with payment.clientSecret (Stripe.js); the "
    "invoice is paid once Stripe reports success."
)
class PayInvoicePayload:
    invoice: Invoice
    payment: Payment | None


@strawberry.type
class InvoiceQueries:
    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description=f"An organization's invoices, newest period first (first: 1 to {constants.page_size_max}); "
        "`before`: only periods starting before it (the last one's periodStart, for the next page).",
    )
    async def invoices(
        self, info: Info, organization_id: strawberry.ID, first: int = 20, before: datetime | None = None
    ) -> list[Invoice]:
        org = await named_organization(info, organization_id)
        if not 1 <= first <= constants.page_size_max:
            raise invalid(f"first must be 1 to {constants.page_size_max}")
        if before is not None:
            bounds.check_time(before, "before")
        found = await store.invoices_of(info.context.resources.pool, org, first, before)
        return [_shown(info, invoice) for invoice in found]

    @strawberry.field(
        extensions=[Authorize(Permission.IDENTIFY, nowhere)],
        description="One invoice by id, with its lines; NOT_FOUND unless the caller may read its organization.",
    )
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice:
        found = await store.load_invoice(info.context.resources.pool, parse_id(id, "id"))
        if found is None:
            raise not_found("invoice")
        try:
            await authorize(info.context, Permission.READ, [found.organization_id])
        except ApiError as error:
            raise not_found("invoice") from error
        return _shown(info, found)


@strawberry.type
class InvoiceMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description="Pay an open invoice now with the card given (default: the organization's default card), e.g. "
        "after a card update during dunning: a suspension it caused is lifted at once (unless another unpaid invoice "
        "suspended the organization too). An invoice is charged once: while a payment of it is under way, or once "
        "it is paid, that payment is answered whatever the key. A card that needs 3-D Secure answers the payment in "
        "REQUIRES_ACTION with its clientSecret; a declined card is PAYMENT_DECLINED (extensions.declineCode).",
    )
    async def pay_invoice(self, info: Info, input: PayInvoiceInput) -> PayInvoicePayload:
        org = await named_organization(info, input.organization_id)
        invoice_id = parse_id(input.invoice_id, "invoiceId")
        key = printable(input.idempotency_key, "idempotencyKey", constants.payment_request_key_length_max - 60)
        method = None if input.payment_method_id is None else payment_method_id(input.payment_method_id)
        paid = await pay_invoice(paying(info), org, invoice_id, key, method)
        payment = None if paid.payment is None else Payment.from_domain(paid.payment)
        return PayInvoicePayload(invoice=_shown(info, paid.invoice), payment=payment)
