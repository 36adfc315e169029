"""Invoices and their lines in PostgreSQL (`invoices`, `invoice_lines`, migration 016).

Plain functions over a connection (the caller owns the transaction). One invoice per (subscription,
period): `invoices_one_per_period` is the guard, and `insert_invoice` writes the row and its lines
only when it is the first. Totals are stored as the lines' sums (the table's CHECK holds them to
it), so what is charged, rendered and reported is one figure. Rows come back as the pure
`ledger.billing.invoice.Invoice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind
from ledger.store.pool import Connection

_COLUMNS = """
id, org_id, subscription_id, number, period_start, period_end, currency, collection, status, issued_at, due_at,
paid_at, payment_id
"""
_BY_ID = f"SELECT {_COLUMNS} FROM invoices WHERE id = $1"  # noqa: S608 - a constant column list
_OF_ORG = f"""
SELECT {_COLUMNS} FROM invoices
WHERE org_id = $1 AND period_start < coalesce($3::timestamptz, 'infinity')
ORDER BY period_start DESC, id LIMIT $2
"""  # noqa: S608 - a constant column list
_LINES = """
SELECT invoice_id, kind, description, quantity, unit_price, amount, credits, prepaid, source
FROM invoice_lines WHERE invoice_id = ANY($1::uuid[]) ORDER BY invoice_id, line_no
"""
_NUMBER = "SELECT nextval('invoice_numbers')"
_INSERT = """
INSERT INTO invoices (id, org_id, subscription_id, period_start, period_end, number, status, collection, currency,
                      subtotal, tax, total, prepaid, amount_due, issued_at, due_at, paid_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT ON CONSTRAINT invoices_one_per_period DO NOTHING
RETURNING id
"""
_INSERT_LINES = """
INSERT INTO invoice_lines (org_id, invoice_id, line_no, kind, description, quantity, unit_price, amount, credits,
                           prepaid, source)
SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::bigint[],
                             $9::bigint[], $10::boolean[], $11::text[])
"""
_PERIOD = "SELECT id FROM invoices WHERE subscription_id = $1 AND period_start = $2"
_MARK_PAID = """
UPDATE invoices SET status = 'paid', paid_at = $2, payment_id = coalesce($3, payment_id)
WHERE id = $1 AND status = 'open'
"""
_LOCK = f"SELECT {_COLUMNS} FROM invoices WHERE id = $1 FOR UPDATE"  # noqa: S608 - a constant column list
_OVERDUE_ALERTED = "SELECT overdue_alerted_at IS NOT NULL FROM invoices WHERE id = $1"


@dataclass(frozen=True, slots=True)
class StoredInvoice:
    """An invoice and what paid it (the payments row), if anything did."""

    invoice: Invoice
    payment_id: UUID | None


def invoice_number(year: int, sequence: int) -> str:
    """`INV-<year>-<6 digits>`: the year it was issued, then the sequence (never reused)."""
    return f"INV-{year}-{sequence:06d}"


def _line(row: asyncpg.Record) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind(row["kind"]),
        description=row["description"],
        quantity=row["quantity"],
        unit_price=row["unit_price"],
        amount=row["amount"],
        credits=row["credits"],
        prepaid=row["prepaid"],
        source=row["source"],
    )


def _invoice(row: asyncpg.Record, lines: tuple[InvoiceLine, ...]) -> Invoice:
    return Invoice(
        id=row["id"],
        organization_id=row["org_id"],
        subscription_id=row["subscription_id"],
        number=row["number"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        currency=row["currency"],
        collection=Collection(row["collection"]),
        status=InvoiceStatus(row["status"]),
        issued_at=row["issued_at"],
        due_at=row["due_at"],
        lines=lines,
        paid_at=row["paid_at"],
    )


async def _with_lines(connection: Connection, rows: list[asyncpg.Record]) -> list[StoredInvoice]:
    lines: dict[UUID, list[InvoiceLine]] = {row["id"]: [] for row in rows}
    for line in await connection.fetch(_LINES, list(lines)):
        lines[line["invoice_id"]].append(_line(line))
    return [StoredInvoice(_invoice(row, tuple(lines[row["id"]])), row["payment_id"]) for row in rows]


async def load_invoice(connection: Connection, invoice_id: UUID) -> Invoice | None:
    """One invoice with its lines, or None."""
    found = await stored_invoice(connection, invoice_id)
    return None if found is None else found.invoice


async def stored_invoice(connection: Connection, invoice_id: UUID, *, for_update: bool = False) -> StoredInvoice | None:
    """One invoice with its lines and payment; `for_update` takes its row lock."""
    rows = await connection.fetch(_LOCK if for_update else _BY_ID, invoice_id)
    found = await _with_lines(connection, rows)
    return found[0] if found else None


async def invoices_of(
    connection: Connection, organization_id: UUID, limit: int, before: datetime | None = None
) -> list[Invoice]:
    """An organization's invoices, newest period first, those of periods starting before `before`."""
    rows = await connection.fetch(_OF_ORG, organization_id, limit, before)
    return [found.invoice for found in await _with_lines(connection, rows)]


async def invoice_of_period(connection: Connection, subscription_id: UUID, period_start: datetime) -> UUID | None:
    found: UUID | None = await connection.fetchval(_PERIOD, subscription_id, period_start)
    return found


async def next_number(connection: Connection, year: int) -> str:
    return invoice_number(year, await connection.fetchval(_NUMBER))


async def insert_invoice(connection: asyncpg.Connection, invoice: Invoice) -> bool:
    """Write the invoice and its lines, once per (subscription, period): False (nothing written)
    when the period has its invoice already. Call it inside a transaction."""
    i = invoice
    inserted = await connection.fetchval(
        _INSERT, i.id, i.organization_id, i.subscription_id, i.period_start, i.period_end, i.number, i.status.value,
        i.collection.value, i.currency, i.subtotal, i.tax, i.total, i.prepaid, i.amount_due, i.issued_at, i.due_at,
        i.paid_at,
    )  # fmt: skip
    if inserted is None:
        return False
    if i.lines:
        columns = zip(
            *(
                (n, line.kind.value, line.description, line.quantity, line.unit_price, line.amount, line.credits,
                 line.prepaid, line.source)
                for n, line in enumerate(i.lines, start=1)
            ),
            strict=True,
        )  # fmt: skip
        await connection.execute(_INSERT_LINES, i.organization_id, i.id, *(list(column) for column in columns))
    return True


async def mark_paid(connection: Connection, invoice_id: UUID, paid_at: datetime, payment_id: UUID | None) -> bool:
    """An open invoice becomes paid (True); one already paid (or void) stays as it is (False)."""
    status = await connection.execute(_MARK_PAID, invoice_id, paid_at, payment_id)
    return bool(status == "UPDATE 1")


async def overdue_alerted(connection: Connection, invoice_id: UUID) -> bool:
    """Whether the invoice's overdue alert was raised (`ledger.invoicing.overdue`)."""
    found: bool | None = await connection.fetchval(_OVERDUE_ALERTED, invoice_id)
    return bool(found)
