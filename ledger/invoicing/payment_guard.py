"""One invoice, one charge (migration 019): at most one payment of an invoice is live or succeeded
(`payments_one_live_per_invoice`). Whoever would start another (`payInvoice` with any key, an
automatic attempt) first looks for that payment under the invoice's row lock and answers or
resumes it; two that start at once are kept apart by the index, whose refusal (`is_live_conflict`)
sends the loser back to look again. A payment that still succeeds beside another (a late webhook
of an attempt recorded failed) is marked `invoice_surplus` by the database and recorded here as an
overpayment for an operator to refund."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.invoice import Invoice, InvoiceStatus
from ledger.invoicing import store
from ledger.payments.store import Payment, payment_by_id
from ledger.store.pool import Connection

LIVE_INDEX = "payments_one_live_per_invoice"

_LIVE = """
SELECT id FROM payments
WHERE invoice_id = $1 AND NOT invoice_surplus
  AND status IN ('creating', 'processing', 'requires_action', 'succeeded')
"""
_OVERPAID = """
INSERT INTO invoice_overpayments (payment_id, invoice_id, org_id, amount, currency, detected_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (payment_id, org_id) DO NOTHING
"""


async def live_payment(connection: Connection, invoice_id: UUID) -> Payment | None:
    """The invoice's one payment that is in flight or succeeded, if it has one."""
    found: UUID | None = await connection.fetchval(_LIVE, invoice_id)
    return None if found is None else await payment_by_id(connection, found)


async def look(pool: asyncpg.Pool, invoice_id: UUID) -> tuple[Invoice | None, Payment | None]:
    """The invoice (None: no such invoice) and the payment that paid it or is live, read under the
    invoice's row lock (so a payment settling it meanwhile is seen, or waits)."""
    async with pool.acquire() as connection, connection.transaction():
        found = await store.stored_invoice(connection, invoice_id, for_update=True)
        if found is None:
            return None, None
        if found.invoice.status is InvoiceStatus.PAID and found.payment_id is not None:
            return found.invoice, await payment_by_id(connection, found.payment_id)
        return found.invoice, await live_payment(connection, invoice_id)


def is_live_conflict(error: asyncpg.UniqueViolationError) -> bool:
    """Whether the insert was refused because the invoice has a live payment already."""
    return getattr(error, "constraint_name", None) == LIVE_INDEX


async def record_overpayment(connection: Connection, payment: Payment, invoice_id: UUID, at: datetime) -> bool:
    """Record that `payment` paid an invoice already paid by another; True the first time."""
    status = await connection.execute(
        _OVERPAID, payment.id, invoice_id, payment.organization_id, payment.amount, payment.currency, at
    )
    return bool(status == "INSERT 0 1")
