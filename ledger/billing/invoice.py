"""An invoice as data: its lines and totals in integer minor units of one currency. Pure.

`ledger.billing.invoice_assembly` builds an invoice's lines from a period's facts (its charges,
the packs bought, the overage, the credits that expired); `ledger.invoicing` stores, charges and
renders them. Every total is a sum of lines, so the figures a finance team adds up on the PDF are
the ones stored and charged.

Taxes are an extension point (`TaxPolicy`): the default `ZeroTax` adds one clearly marked zero line,
so a tax engine plugs in by returning real lines, and the totals already carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class LineKind(StrEnum):
    PLAN = "plan"  # the subscription's fee for the period
    SEATS = "seats"  # a per-seat plan's fee
    KITS = "kits"  # kits beyond those the plan includes
    PRORATION = "proration"  # a mid-period seat or plan change
    PACK = "pack"  # a credit pack bought in the period (paid when bought: prepaid)
    OVERAGE = "overage"  # usage the credits did not cover, per SKU at its overage rate
    EXPIRED = "expired"  # paid credits that expired unused: shown, not charged, not refunded
    TAX = "tax"


class Collection(StrEnum):
    CHARGE_AUTOMATICALLY = "charge_automatically"  # the saved card is charged when it is issued
    SEND_INVOICE = "send_invoice"  # Net-N: a due date, no charge (enterprise annual contracts)


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: LineKind
    description: str
    quantity: Decimal
    unit_price: Decimal  # money per unit in the currency's major unit (as the catalog prices)
    amount: int  # minor units; 0 for a line shown and not charged
    credits: int | None = None  # micro-credits the line is about (overage, expired), when it is
    prepaid: bool = False  # already paid (a pack): counted in the total, not in the amount due
    source: str = ""  # what it came from: a charge's key, a payment intent, a product's postings


def subtotal_of(lines: Sequence[InvoiceLine]) -> int:
    return sum(line.amount for line in lines if line.kind is not LineKind.TAX)


def tax_of(lines: Sequence[InvoiceLine]) -> int:
    return sum(line.amount for line in lines if line.kind is LineKind.TAX)


def prepaid_of(lines: Sequence[InvoiceLine]) -> int:
    return sum(line.amount for line in lines if line.prepaid)


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice as stored: one per (subscription, period)."""

    id: UUID
    organization_id: UUID
    subscription_id: UUID
    number: str
    period_start: datetime
    period_end: datetime
    currency: str
    collection: Collection
    status: InvoiceStatus
    issued_at: datetime
    due_at: datetime
    lines: tuple[InvoiceLine, ...]
    paid_at: datetime | None = None

    @property
    def subtotal(self) -> int:
        return subtotal_of(self.lines)

    @property
    def tax(self) -> int:
        return tax_of(self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax

    @property
    def prepaid(self) -> int:
        return prepaid_of(self.lines)

    @property
    def amount_due(self) -> int:
        return max(self.total - self.prepaid, 0)


class TaxPolicy(Protocol):
    """The taxes' extension point: the tax lines for an invoice's other lines (none is fine)."""

    def tax_lines(self, lines: Sequence[InvoiceLine], currency: str) -> tuple[InvoiceLine, ...]: ...


class ZeroTax:
    """No tax engine configured: one zero line, marked, so the invoice says so."""

    def tax_lines(self, lines: Sequence[InvoiceLine], currency: str) -> tuple[InvoiceLine, ...]:
        return (InvoiceLine(LineKind.TAX, "Tax (not calculated)", Decimal(0), Decimal(0), 0, source="tax:none"),)
