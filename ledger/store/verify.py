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
            ON p.org_id = l.org_id AND p.transaction_id = l.transaction_id AND p.lot_id = l.id
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
        WHERE ($1::uuid IS NULL OR p.org_id = $1) AND p.amount < 0 AND t.command_type = 'record_usage'
          AND (coalesce((t.payload->>'occurred_at')::timestamptz, t.received_at) < l.effective_at
               OR coalesce((t.payload->>'occurred_at')::timestamptz, t.received_at) >= l.expires_at)
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
