"""Recompute the ledger from its journal and report every place the stored state disagrees.

The journal (transactions and postings) is the truth; lots' `remaining` is a cache of it. Each check
is one query over the whole database (or one organization) and returns the rows that break a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    organization_id: UUID
    detail: str


# Each query returns (org_id, detail) for rows breaking the rule; $1 is an org id or NULL for all.
CHECKS: dict[str, str] = {
    "postings_sum_to_zero": """
        SELECT org_id, format('transaction %s sums to %s', transaction_id, sum(amount))
        FROM ledger_postings WHERE $1::uuid IS NULL OR org_id = $1
        GROUP BY org_id, transaction_id HAVING sum(amount) <> 0
    """,
    "lot_remaining_equals_journal": """
        SELECT l.org_id, format('lot %s remaining %s, journal %s', l.id, l.remaining, coalesce(p.total, 0))
        FROM credit_lots l
        LEFT JOIN (
            SELECT org_id, lot_id, sum(amount) AS total FROM ledger_postings
            WHERE lot_id IS NOT NULL AND ($1::uuid IS NULL OR org_id = $1) GROUP BY org_id, lot_id
        ) p ON p.org_id = l.org_id AND p.lot_id = l.id
        WHERE ($1::uuid IS NULL OR l.org_id = $1) AND l.remaining <> coalesce(p.total, 0)
    """,
    "lot_amount_equals_its_grant": """
        SELECT l.org_id, format('lot %s amount %s, granted %s', l.id, l.amount, coalesce(p.amount, 0))
        FROM credit_lots l
        LEFT JOIN ledger_postings p
            ON p.org_id = l.org_id AND p.transaction_id = l.transaction_id AND p.lot_id = l.id AND p.amount > 0
        WHERE ($1::uuid IS NULL OR l.org_id = $1) AND l.amount <> coalesce(p.amount, 0)
    """,
    "no_lot_below_zero": """
        SELECT org_id, format('lot %s remaining %s', id, remaining) FROM credit_lots
        WHERE ($1::uuid IS NULL OR org_id = $1) AND remaining < 0
    """,
    "usage_only_from_lots_valid_then": """
        SELECT p.org_id,
               format('transaction %s spent lot %s outside %s .. %s', t.id, l.id, l.effective_at, l.expires_at)
        FROM ledger_postings p
        JOIN ledger_transactions t ON t.org_id = p.org_id AND t.id = p.transaction_id
        JOIN credit_lots l ON l.org_id = p.org_id AND l.id = p.lot_id
        WHERE ($1::uuid IS NULL OR p.org_id = $1) AND p.amount < 0
          AND t.command_type IN ('record_usage', 'capture_hold')
          AND (coalesce((t.payload->>'occurred_at')::timestamptz, t.received_at) < l.effective_at
               OR coalesce((t.payload->>'occurred_at')::timestamptz, t.received_at) >= l.expires_at)
    """,
    "hold_reserved_equals_journal": """
        SELECT h.org_id, format('hold %s reserves %s, journal %s', h.id, h.reserved, coalesce(p.total, 0))
        FROM credit_holds h
        LEFT JOIN (
            SELECT org_id, hold_id, sum(amount) AS total FROM ledger_postings
            WHERE hold_id IS NOT NULL AND ($1::uuid IS NULL OR org_id = $1) GROUP BY org_id, hold_id
        ) p ON p.org_id = h.org_id AND p.hold_id = h.id
        WHERE ($1::uuid IS NULL OR h.org_id = $1) AND h.reserved <> coalesce(p.total, 0)
    """,
    "credit_drawn_equals_journal": """
        SELECT o.id, format('credit drawn %s, journal %s', o.credit_drawn, coalesce(-p.total, 0))
        FROM organizations o
        LEFT JOIN (
            SELECT org_id, sum(amount) AS total FROM ledger_postings
            WHERE account = 'credit_line' AND ($1::uuid IS NULL OR org_id = $1) GROUP BY org_id
        ) p ON p.org_id = o.id
        WHERE ($1::uuid IS NULL OR o.id = $1) AND o.credit_drawn <> coalesce(-p.total, 0)
    """,
    "quote_used_once": """
        SELECT q.org_id, format('quote %s used by %s transactions', q.id, count(*))
        FROM credit_quotes q
        JOIN ledger_transactions t ON t.org_id = q.org_id AND t.command_type = 'record_usage'
             AND t.status = 'accepted' AND t.payload->>'quote_id' = q.id::text
        WHERE ($1::uuid IS NULL OR q.org_id = $1)
        GROUP BY q.org_id, q.id HAVING count(*) > 1
    """,
    "reversed_at_most_once": """
        SELECT org_id, format('transaction %s credited back %s times', payload->>'transaction_id', count(*))
        FROM ledger_transactions
        WHERE ($1::uuid IS NULL OR org_id = $1) AND command_type = 'credit_back' AND status = 'accepted'
        GROUP BY org_id, payload->>'transaction_id' HAVING count(*) > 1
    """,
    "rejected_commands_have_no_postings": """
        SELECT t.org_id, format('rejected transaction %s has postings', t.id)
        FROM ledger_transactions t
        WHERE ($1::uuid IS NULL OR t.org_id = $1) AND t.status = 'rejected'
          AND EXISTS (SELECT 1 FROM ledger_postings p WHERE p.org_id = t.org_id AND p.transaction_id = t.id)
    """,
}


async def verify(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID | None = None) -> list[Violation]:
    violations = []
    for rule, query in CHECKS.items():
        for row in await connection.fetch(query, organization_id):
            violations.append(Violation(rule, row[0], row[1]))
    return violations
