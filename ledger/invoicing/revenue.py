"""The revenue report's inputs, read from PostgreSQL; the policies are `ledger.billing.revenue`'s.

Three reads, for one organization or the whole platform:

- the subscription charges (`billing_charges` kinds plan, seats, kits, proration) whose service
  period meets the window (a proration's runs from its seat or plan change to the period's end),
  each with the invoice line that bills it (`invoice_lines.source` is the charge's key), and the
  overage lines of the invoices whose period meets it;
- the lots that carry money or a marketing cost (a price per credit, `marketing`, bonus and
  promotional credits) granted before the window's end, each with its basis (what its payment
  charged, else credits x price per credit), and what the ledger's postings moved out of them (and
  of the lots split from them: transfers and rollover banks keep their terms), before and inside
  the window, by what moved it: usage, captures and credit-backs consume; expiry (dated by the
  lot's end, whenever the expiry ran) and resets are breakage; `refund_lot` refunds; adjustments
  and revocations correct. A grant that repaid the credit line consumed what it repaid;
- the refunds that succeeded in the window, dated by their ledger transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.money_format import round_minor, to_minor
from ledger.billing.revenue import LotActivity, Movement, PricedLot, Refund, RevenueReport, ServiceCharge, report
from ledger.core.commands import LotKind, RevenueTreatment
from ledger.core.money import MICRO_PER_CREDIT
from ledger.store.pool import Connection

_CHARGES = """
SELECT bc.idempotency_key, bc.currency, bc.amount, coalesce(sc.at, pc.at, bc.period_start) AS service_start,
       bc.period_end AS service_end, i.number, il.line_no
FROM billing_charges bc
LEFT JOIN seat_changes sc
  ON sc.org_id = bc.org_id AND sc.subscription_id = bc.subscription_id
 AND bc.idempotency_key = 'seats:' || bc.subscription_id || ':' || sc.id
LEFT JOIN plan_changes pc
  ON pc.org_id = bc.org_id AND pc.subscription_id = bc.subscription_id
 AND bc.idempotency_key = 'upgrade:' || bc.subscription_id || ':' || pc.id
LEFT JOIN invoice_lines il ON il.org_id = bc.org_id AND il.source = bc.idempotency_key
LEFT JOIN invoices i ON i.id = il.invoice_id AND i.org_id = il.org_id AND i.status <> 'void'
WHERE bc.kind IN ('plan', 'seats', 'kits', 'proration') AND ($1::uuid IS NULL OR bc.org_id = $1)
  AND bc.period_start < $3 AND bc.period_end > $2
ORDER BY bc.period_start, bc.idempotency_key
"""
_OVERAGE = """
SELECT i.number, il.line_no, il.source, i.currency, il.amount, i.period_start, i.period_end
FROM invoices i JOIN invoice_lines il ON il.org_id = i.org_id AND il.invoice_id = i.id
WHERE il.kind = 'overage' AND i.status <> 'void' AND ($1::uuid IS NULL OR i.org_id = $1)
  AND i.period_start < $3 AND i.period_end > $2
ORDER BY i.period_start, i.number, il.line_no
"""
# Roots: lots that carry money or a marketing cost, granted before the window's end; then every
# lot split from them. Their lot legs are summed per (root, transaction): a transfer between two
# of a root's lots nets to nothing, a rollover into its bank leaves what became breakage.
_LOTS = """
SELECT l.org_id, l.id, l.kind, l.revenue_treatment, l.amount, l.created_at, l.price_per_credit, l.currency,
       l.transaction_id, pay.amount AS paid, pay.currency AS paid_currency, pay.payment_intent_id
FROM credit_lots l
LEFT JOIN payments pay ON pay.org_id = l.org_id AND pay.lot_id = l.id AND pay.status = 'succeeded'
WHERE l.parent_id IS NULL AND l.created_at < $2 AND ($1::uuid IS NULL OR l.org_id = $1)
  AND (l.price_per_credit IS NOT NULL OR l.revenue_treatment = 'marketing' OR l.kind IN ('bonus', 'promotional'))
"""
_MOVEMENTS = """
WITH RECURSIVE family AS (
    SELECT l.org_id, l.id, l.expires_at, l.id AS root, l.transaction_id AS granted_by, l.amount AS granted
    FROM credit_lots l
    WHERE l.parent_id IS NULL AND l.created_at < $3 AND ($1::uuid IS NULL OR l.org_id = $1)
      AND (l.price_per_credit IS NOT NULL OR l.revenue_treatment = 'marketing' OR l.kind IN ('bonus', 'promotional'))
    UNION ALL
    SELECT c.org_id, c.id, c.expires_at, f.root, f.granted_by, f.granted
    FROM credit_lots c JOIN family f ON c.org_id = f.org_id AND c.parent_id = f.id
), legs AS (
    -- An expiry's breakage belongs to the lot's end, not to when the expiry ran (a job, a close).
    SELECT f.org_id, f.root, f.granted_by, f.granted, t.id, t.command_type, p.amount,
           CASE WHEN t.command_type = 'expire' THEN least(t.received_at, coalesce(f.expires_at, t.received_at))
                ELSE t.received_at END AS at
    FROM family f
    JOIN ledger_postings p ON p.org_id = f.org_id AND p.lot_id = f.id
    JOIN ledger_transactions t ON t.org_id = p.org_id AND t.id = p.transaction_id
    WHERE t.received_at < $3 OR (t.command_type = 'expire' AND f.expires_at < $3)
), moves AS (
    SELECT org_id, root, id, command_type, min(at) AS at,
           (CASE WHEN id = granted_by THEN granted - sum(amount) ELSE -sum(amount) END)::bigint AS credits
    FROM legs WHERE at < $3
    GROUP BY org_id, root, granted_by, granted, id, command_type
)
SELECT org_id, root,
       CASE WHEN command_type IN ('expire', 'reset_lots') THEN 'expired'
            WHEN command_type = 'refund_lot' THEN 'refunded'
            WHEN command_type IN ('adjust_credits', 'revoke_credits') THEN 'removed'
            ELSE 'consumed' END AS movement,
       at >= $2 AS within,
       sum(credits)::bigint AS credits,
       (array_agg(id::text ORDER BY at, id))[1:$4] AS sources
FROM moves WHERE credits <> 0
GROUP BY 1, 2, 3, 4
"""
_REFUNDS = """
SELECT r.id, r.currency, r.amount
FROM refunds r
LEFT JOIN ledger_transactions t ON t.org_id = r.org_id AND t.id = r.ledger_transaction_id
WHERE r.status = 'succeeded' AND ($1::uuid IS NULL OR r.org_id = $1)
  AND coalesce(t.received_at, r.created_at) >= $2 AND coalesce(t.received_at, r.created_at) < $3
ORDER BY coalesce(t.received_at, r.created_at), r.id
"""


async def revenue_report(
    connection: Connection,
    organization_id: UUID | None,
    window_start: datetime,
    window_end: datetime,
    credit_price: Decimal | None = None,
    catalog_currency: str = "USD",
) -> RevenueReport:
    """The report for `[window_start, window_end)`: one organization's, or the platform's (None)."""
    window = (organization_id, window_start, window_end)
    charges = [
        *_charges(await connection.fetch(_CHARGES, *window)),
        *_overage(await connection.fetch(_OVERAGE, *window)),
    ]
    lots = _activities(
        await connection.fetch(_LOTS, organization_id, window_end),
        await connection.fetch(_MOVEMENTS, *window, constants.revenue_report_sources_max),
    )
    refunds = [
        Refund(str(row["id"]), row["currency"], row["amount"]) for row in await connection.fetch(_REFUNDS, *window)
    ]
    return report(window_start, window_end, charges, lots, refunds, credit_price, catalog_currency)


def _charges(rows: list[asyncpg.Record]) -> list[ServiceCharge]:
    by_key: dict[str, ServiceCharge] = {}
    for row in rows:
        key = row["idempotency_key"]
        line = () if row["number"] is None else (f"{row['number']}#{row['line_no']}",)
        known = by_key.get(key)
        sources = (key, *line) if known is None else (*known.sources, *line)
        by_key[key] = ServiceCharge(
            sources=sources,
            currency=row["currency"],
            amount=to_minor(row["amount"], row["currency"]),
            service_start=row["service_start"],
            service_end=row["service_end"],
        )
    return list(by_key.values())


def _overage(rows: list[asyncpg.Record]) -> list[ServiceCharge]:
    return [
        ServiceCharge(
            sources=(f"{row['number']}#{row['line_no']}", row["source"]),
            currency=row["currency"],
            amount=row["amount"],
            service_start=row["period_start"],
            service_end=row["period_end"],
            overage=True,
        )
        for row in rows
    ]


def _activities(lot_rows: list[asyncpg.Record], movement_rows: list[asyncpg.Record]) -> list[LotActivity]:
    before: dict[UUID, int] = defaultdict(int)
    within: dict[UUID, dict[Movement, int]] = defaultdict(dict)
    sources: dict[UUID, dict[Movement, list[str]]] = defaultdict(dict)
    for row in movement_rows:
        root = row["root"]
        if not row["within"]:
            before[root] += row["credits"]
            continue
        movement = Movement(row["movement"])
        within[root][movement] = within[root].get(movement, 0) + row["credits"]
        sources[root].setdefault(movement, []).extend(row["sources"])
    activities = []
    for row in lot_rows:
        lot = _priced_lot(row)
        found = sources.get(lot.lot_id, {})
        activities.append(
            LotActivity(lot, before[lot.lot_id], within.get(lot.lot_id, {}), {k: tuple(v) for k, v in found.items()})
        )
    return activities


def _priced_lot(row: asyncpg.Record) -> PricedLot:
    basis: int | None = None
    currency = row["currency"]
    if row["paid"] is not None:
        basis, currency = row["paid"], row["paid_currency"]
    elif row["price_per_credit"] is not None and currency:
        money = Decimal(row["amount"]) / MICRO_PER_CREDIT * row["price_per_credit"]
        basis = to_minor(round_minor(money, currency), currency)
    return PricedLot(
        lot_id=row["id"],
        kind=LotKind(row["kind"]),
        treatment=RevenueTreatment(row["revenue_treatment"]),
        credits=row["amount"],
        granted_at=row["created_at"],
        basis=basis,
        currency=currency,
        source=row["payment_intent_id"] or str(row["transaction_id"]),
    )
