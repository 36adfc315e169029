"""An invoice's lines for one (subscription, billing period), from the period's facts. Pure.

The inputs are plain rows the store read (`ledger.invoicing.period_facts`):

- the period's `billing_charges` (the plan's fee, seats, extra kits, prorations): their amounts are
  already rounded to the currency's minor unit when they were charged, so they are converted
  exactly (`to_minor`), and one with a fraction of a minor unit is refused, never rounded again;
- the packs bought in the period (`billing_charges` kind 'pack'): paid when bought, so prepaid
  (counted in the total, not in the amount due);
- the overage per SKU (the journal's `overage:<product>` postings, their money the ledger's own
  `overage_amount` per debit at the SKU's overage rate, a credit-back taking its debit's back):
  summed exactly, then rounded half up once per line;
- the credits of paid lots that expired unused in the period: shown, amount 0 (not refunded);
- then the tax policy's lines (`ZeroTax` by default: one marked zero line).

Totals are never stored apart from the lines: `ledger.billing.invoice.Invoice` sums them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ledger.billing.invoice import InvoiceLine, LineKind, TaxPolicy, ZeroTax
from ledger.billing.money_format import round_minor, to_minor
from ledger.core.errors import InvalidCommand
from ledger.core.money import format_credits

_CHARGE_KINDS = {kind.value: kind for kind in (LineKind.PLAN, LineKind.SEATS, LineKind.KITS, LineKind.PRORATION)}


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """A `billing_charges` row: a period's fee, seats, kits, a proration, or a pack bought."""

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # major units, already rounded to the minor unit when charged
    currency: str
    source: str  # its idempotency key


@dataclass(frozen=True, slots=True)
class OverageRow:
    """One SKU's overage in the period: the uncovered micro-credits and their money (exact, to a
    millionth), the units they stand for, and the SKU's overage price per unit when known."""

    product: str
    credits: int
    money: Decimal
    units: Decimal
    unit_price: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class ExpiredRow:
    """Credits of a paid lot that expired unused in the period."""

    lot_id: str
    credits: int
    description: str


def _to_minor_checked(amount: Decimal, currency: str, what: str) -> int:
    """A stored amount in minor units, exactly: a fraction of a minor unit is a bug upstream."""
    try:
        return to_minor(amount, currency)
    except ValueError as error:
        raise InvalidCommand(f"{what}: {error}") from None


def _same_currency(currency: str, found: str, what: str) -> None:
    if found.upper() != currency:
        raise InvalidCommand(f"{what} is in {found}, the invoice in {currency}")


def charge_line(row: ChargeRow, currency: str) -> InvoiceLine:
    _same_currency(currency, row.currency, row.source)
    amount = _to_minor_checked(row.amount, currency, row.source)
    if row.kind == LineKind.PACK.value:
        return InvoiceLine(
            LineKind.PACK, row.description, row.quantity, row.unit_price, amount, prepaid=True, source=row.source
        )
    kind = _CHARGE_KINDS.get(row.kind)
    if kind is None:
        raise InvalidCommand(f"{row.source}: no invoice line kind {row.kind!r}")
    return InvoiceLine(kind, row.description, row.quantity, row.unit_price, amount, source=row.source)


def overage_line(row: OverageRow, currency: str) -> InvoiceLine:
    _same_currency(currency, row.currency, f"overage of {row.product}")
    amount = _to_minor_checked(round_minor(row.money, currency), currency, f"overage of {row.product}")
    price = row.unit_price if row.unit_price is not None else Decimal(0)
    rate = "" if row.unit_price is None else f" at {row.unit_price} per unit"
    description = f"{row.product}: overage, {format_credits(row.credits)} credits not covered{rate}"
    return InvoiceLine(
        LineKind.OVERAGE, description, row.units, price, amount, credits=row.credits, source=f"overage:{row.product}"
    )


def expired_line(row: ExpiredRow) -> InvoiceLine:
    credits = Decimal(format_credits(row.credits))
    return InvoiceLine(
        LineKind.EXPIRED, row.description, credits, Decimal(0), 0, credits=row.credits, source=f"lot:{row.lot_id}"
    )


def assemble(
    currency: str,
    charges: Sequence[ChargeRow],
    overage: Sequence[OverageRow] = (),
    expired: Sequence[ExpiredRow] = (),
    tax: TaxPolicy | None = None,
) -> tuple[InvoiceLine, ...]:
    """The invoice's lines in order: charges (fee, seats, kits, prorations), packs, overage per SKU
    (by product key), expired paid credits, then tax. Overage of no money and no credits is left out."""
    currency = currency.upper()
    ordered = sorted(charges, key=lambda row: row.kind == LineKind.PACK.value)
    lines = [charge_line(row, currency) for row in ordered]
    billed = sorted((row for row in overage if row.credits or row.money), key=lambda row: row.product)
    lines += [overage_line(row, currency) for row in billed]
    lines += [expired_line(row) for row in expired if row.credits > 0]
    policy = tax if tax is not None else ZeroTax()
    return (*lines, *policy.tax_lines(lines, currency))
