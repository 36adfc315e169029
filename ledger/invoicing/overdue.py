"""Net-N invoices past their due date: nobody charges them (the customer pays by transfer or with
`payInvoice`), so when one is still open after `dueAt` the organization gets one PAYMENT_FAILED
alert (key `invoice:<id>:overdue`), resolved when it is paid. No retries and no suspension: an
invoiced contract's terms are the finance team's to enforce.

Once per invoice with any number of job workers: rows are claimed `FOR UPDATE SKIP LOCKED` and
marked (`overdue_alerted_at`) in the transaction that sends the alert; the ledger applies the key
once if a crash comes between the two."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from ledger.core.commands import AlertKind, RaiseBillingAlert
from ledger.core.money import MicroCredits
from ledger.invoicing.settlement import send_effects
from ledger.subscriptions.effects import Effects

log = logging.getLogger(__name__)

_DUE = """
SELECT id, org_id, number, amount_due, due_at FROM invoices
WHERE status = 'open' AND collection = 'send_invoice' AND overdue_alerted_at IS NULL AND due_at <= $1
ORDER BY due_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_MARK = "UPDATE invoices SET overdue_alerted_at = $2 WHERE id = $1"


async def alert_overdue(pool: asyncpg.Pool, effects: Effects, now: datetime, limit: int) -> int:
    """Raise the overdue alert of each open Net-N invoice past its due date; how many."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(_DUE, now, limit)
        for row in rows:
            name = f"invoice {row['number']} overdue: due {row['due_at'].date().isoformat()}, unpaid"
            alert = RaiseBillingAlert(AlertKind.PAYMENT_FAILED, name, value=MicroCredits(row["amount_due"]))
            await send_effects(effects, now, row["org_id"], [(f"invoice:{row['id']}:overdue", alert)])
            await connection.execute(_MARK, row["id"], now)
            log.warning("invoice %s of organization %s is overdue", row["number"], row["org_id"])
    return len(rows)
