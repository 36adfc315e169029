"""Invoices as the API shows them: thin types over `ledger.billing.invoice.Invoice`, converted here
in one place. Money is exact: a decimal string in the currency's major unit with every decimal it
has ("995.00"), its integer minor units as a string (never a 32-bit Int), and the babel-formatted
text ("$995.00")."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from graphql_api.scalars import Credits, Quantity
from ledger.billing import invoice as domain
from ledger.billing.money_format import format_minor, from_minor
from ledger.invoicing.pdf_links import pdf_path


@strawberry.enum(description="What a line is for.")
class InvoiceLineKind(Enum):
    PLAN = "plan"
    SEATS = "seats"
    KITS = "kits"
    PRORATION = "proration"
    PACK = "pack"
    OVERAGE = "overage"
    EXPIRED = "expired"
    TAX = "tax"


@strawberry.enum(description="How an invoice is collected.")
class InvoiceCollection(Enum):
    CHARGE_AUTOMATICALLY = "charge_automatically"
    SEND_INVOICE = "send_invoice"


@strawberry.enum
class InvoiceStatus(Enum):
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


@strawberry.type(description='An exact amount of money, e.g. value "11.50", minorUnits "1150", formatted "$11.50".')
class Money:
    value: str = strawberry.field(description="Major units, with every decimal the currency has.")
    minor_units: str = strawberry.field(description="Integer minor units (cents), as a string.")
    currency: str = strawberry.field(description="ISO 4217, upper case.")
    formatted: str = strawberry.field(description="For people (en_US).")

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(
            value=str(from_minor(minor, currency)),
            minor_units=str(minor),
            currency=currency,
            formatted=format_minor(minor, currency),
        )


@strawberry.type(description="One line of an invoice, traceable to what it came from (`source`).")
class InvoiceLine:
    kind: InvoiceLineKind
    description: str
    quantity: Quantity
    unit_price: Quantity = strawberry.field(description="Money per unit in the major unit, as priced.")
    money: Money = strawberry.field(description="0 for a line shown and not charged (expired credits).")
    credits: Credits | None = strawberry.field(description="The credits the line is about (overage, expired).")
    prepaid: bool = strawberry.field(description="Paid already (a pack): in the total, not in the amount due.")
    source: str = strawberry.field(description="A charge's key, a payment intent's grant, a product's overage.")

    @classmethod
    def from_domain(cls, line: domain.InvoiceLine, currency: str) -> InvoiceLine:
        return cls(
            kind=InvoiceLineKind(line.kind.value), description=line.description, quantity=Quantity(line.quantity),
            unit_price=Quantity(line.unit_price), money=Money.of(line.amount, currency),
            credits=None if line.credits is None else Credits(line.credits), prepaid=line.prepaid, source=line.source,
        )  # fmt: skip


@strawberry.type(description="An invoice: one per (subscription, billing period), issued at the period's end.")
class Invoice:
    id: strawberry.ID
    organization_id: strawberry.ID
    subscription_id: strawberry.ID
    number: str = strawberry.field(description="INV-<year>-<6 digits>.")
    period_start: datetime
    period_end: datetime
    status: InvoiceStatus
    collection: InvoiceCollection
    currency: str
    subtotal: Money
    tax: Money
    grand_total: Money = strawberry.field(description="Subtotal + tax: the sum of every line.")
    prepaid: Money
    amount_due: Money
    issued_at: datetime
    due_at: datetime = strawberry.field(description="Net-N: issued + N days; charged by card: when issued.")
    paid_at: datetime | None
    lines: list[InvoiceLine]
    pdf_url: str = strawberry.field(description="The PDF's signed link (a path on this service), valid for a day.")

    @classmethod
    def from_domain(cls, invoice: domain.Invoice, secret: bytes, now: datetime) -> Invoice:
        i, currency = invoice, invoice.currency
        return cls(
            id=strawberry.ID(str(i.id)), organization_id=strawberry.ID(str(i.organization_id)),
            subscription_id=strawberry.ID(str(i.subscription_id)), number=i.number, period_start=i.period_start,
            period_end=i.period_end, status=InvoiceStatus(i.status.value),
            collection=InvoiceCollection(i.collection.value), currency=currency,
            subtotal=Money.of(i.subtotal, currency), tax=Money.of(i.tax, currency),
            grand_total=Money.of(i.total, currency), prepaid=Money.of(i.prepaid, currency),
            amount_due=Money.of(i.amount_due, currency),
            issued_at=i.issued_at, due_at=i.due_at, paid_at=i.paid_at,
            lines=[InvoiceLine.from_domain(line, currency) for line in i.lines],
            pdf_url=pdf_path(i.id, secret, now),
        )  # fmt: skip


@strawberry.input(description="Pay an open invoice now, e.g. after a new card during dunning.")
class PayInvoiceInput:
    organization_id: strawberry.ID
    invoice_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="Your id for this payment: a retry pays once.")
    payment_method_id: str | None = strawberry.field(
        default=None, description="A card attached to the organization; default: its default card."
    )
