"""What one billing period of a subscription has to invoice, read from the billing facts and the
journal, as the plain rows `ledger.billing.invoice_assembly` takes.

- Charges: the subscription's `billing_charges` of the period (its fee, seats and kits, recorded
  by the turnover's 'charge' fact, and the prorations of changes made in it: every one carries the
  billing period's start).
- Packs: the organization's `billing_charges` of kind 'pack' paid in the period (by its payment's
  `succeeded_at`, else the row's time).
- Overage: per product, the journal's `overage:<product>` postings of the transactions committed
  in the period (the time the journal holds them, as the usage reports bucket them), their money
  the ledger's own `overage_amount` per debit; a credit-back takes its debit's overage back.
- Expired: what the expiry of each paid lot (`source = 'payment'`) whose end falls in the period,
  (start, end], took from it: shown on the invoice, never refunded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger.billing.invoice_assembly import ChargeRow, ExpiredRow, OverageRow

_CHARGES = """
SELECT kind, description, quantity, unit_price, amount, currency, idempotency_key
FROM billing_charges
WHERE org_id = $1 AND subscription_id = $2 AND period_start = $3 AND kind <> 'pack'
ORDER BY created_at, idempotency_key
"""
# A pack's row is dated by its payment's success (the payments row of its intent), which a job's
# clock sets; a row with a period of its own says so itself.
_PACKS = """
SELECT c.kind, c.description, c.quantity, c.unit_price, c.amount, c.currency, c.idempotency_key
FROM billing_charges c
LEFT JOIN payments p ON p.org_id = c.org_id AND 'payment:' || p.payment_intent_id = c.idempotency_key
WHERE c.org_id = $1 AND c.kind = 'pack'
  AND coalesce(c.period_start, p.succeeded_at, c.created_at) >= $2
  AND coalesce(c.period_start, p.succeeded_at, c.created_at) < $3
ORDER BY coalesce(c.period_start, p.succeeded_at, c.created_at), c.idempotency_key
"""
# A debit's uncovered credits post negative to overage:<product>; its credit-back posts them back.
# The money and the units are the debit's (the credit-back's are its debit's, negated by the sign
# of the posting).
_OVERAGE = """
WITH legs AS (
    SELECT substr(p.account, 9) AS product, p.amount AS posted,
           coalesce(o.result, t.result) AS result, coalesce(o.payload, t.payload) AS payload
    FROM ledger_postings p
    JOIN ledger_transactions t ON t.org_id = p.org_id AND t.id = p.transaction_id
    LEFT JOIN ledger_transactions o
        ON t.command_type = 'credit_back' AND o.org_id = t.org_id AND o.id = (t.payload->>'transaction_id')::uuid
    WHERE p.org_id = $1 AND p.account LIKE 'overage:%' AND t.committed_at >= $2 AND t.committed_at < $3
)
SELECT product,
       -sum(posted) AS credits,
       sum(CASE WHEN posted < 0 THEN 1 ELSE -1 END
           * coalesce((result->'details'->>'overage_amount')::numeric, 0)) AS money,
       sum(round(coalesce((payload->>'quantity')::numeric, 0) * (-posted)
                 / nullif((result->>'credits_charged')::numeric, 0), 6)) AS units,
       max(result->'details'->>'currency') AS currency
FROM legs GROUP BY product ORDER BY product
"""
_EXPIRED = """
SELECT l.id, l.kind, l.expires_at, -sum(p.amount) AS credits, max(pay.pack_key) AS pack_key
FROM credit_lots l
JOIN ledger_postings p ON p.org_id = l.org_id AND p.lot_id = l.id AND p.account = 'lot'
JOIN ledger_transactions t ON t.org_id = p.org_id AND t.id = p.transaction_id AND t.command_type = 'expire'
LEFT JOIN payments pay ON pay.org_id = l.org_id AND pay.lot_id = l.id
WHERE l.org_id = $1 AND l.source = 'payment' AND l.expires_at > $2 AND l.expires_at <= $3
GROUP BY l.id, l.kind, l.expires_at
HAVING -sum(p.amount) > 0
ORDER BY l.expires_at, l.id
"""


@dataclass(frozen=True, slots=True)
class PeriodInputs:
    charges: list[ChargeRow]
    overage: list[OverageRow]
    expired: list[ExpiredRow]


def _charge(row: asyncpg.Record) -> ChargeRow:
    return ChargeRow(
        row["kind"], row["description"], row["quantity"], row["unit_price"], row["amount"], row["currency"],
        row["idempotency_key"],
    )  # fmt: skip


async def period_inputs(
    connection: asyncpg.Connection,
    organization_id: UUID,
    subscription_id: UUID,
    start: datetime,
    end: datetime,
    overage_price: Callable[[str], Decimal | None],
    currency: str,
) -> PeriodInputs:
    """The period's charges (packs last), overage per product (`overage_price(product)`: the SKU's
    overage price per unit to show) and expired paid credits."""
    charges = [_charge(row) for row in await connection.fetch(_CHARGES, organization_id, subscription_id, start)]
    charges += [_charge(row) for row in await connection.fetch(_PACKS, organization_id, start, end)]
    overage = [
        _overage(row, overage_price(row["product"]), currency)
        for row in await connection.fetch(_OVERAGE, organization_id, start, end)
    ]
    expired = [
        ExpiredRow(str(row["id"]), int(row["credits"]), _expired_description(row))
        for row in await connection.fetch(_EXPIRED, organization_id, start, end)
    ]
    return PeriodInputs(charges, overage, expired)


def _overage(row: asyncpg.Record, unit_price: Decimal | None, currency: str) -> OverageRow:
    units = Decimal(format(row["units"].normalize(), "f")) if row["units"] is not None else Decimal(0)
    return OverageRow(row["product"], int(row["credits"]), row["money"], units, unit_price, row["currency"] or currency)


def _expired_description(row: asyncpg.Record) -> str:
    what = f"credit pack {row['pack_key']}" if row["pack_key"] else f"{row['kind']} credits"
    return f"Expired unused ({what}, ended {row['expires_at']:%Y-%m-%d}): not refunded"
