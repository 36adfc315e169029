"""Period facts in PostgreSQL (`period_facts`, one row per (subscription, period, reason)) and the
turnover schedule on each subscription (`turnover_due_at`, `turnover_decided_until`).

Plain functions over a connection; the caller owns the transaction. The subscription's row lock
(taken here, `FOR UPDATE`, or claimed `FOR UPDATE SKIP LOCKED` by a cron run) serializes every
turnover of one subscription with the others and with its seat and plan changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.turnover import RecordedFact

_LOCK = "SELECT turnover_decided_until FROM subscriptions WHERE id = $1 FOR UPDATE"
# The live subscription due soonest that no other run holds, leaving out those this run did.
_CLAIM_DUE = """
SELECT id, turnover_decided_until FROM subscriptions
WHERE status <> 'canceled' AND turnover_due_at <= $1 AND NOT (id = ANY($2::uuid[]))
ORDER BY turnover_due_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
_SCHEDULE = """
UPDATE subscriptions SET turnover_due_at = coalesce($2::timestamptz, 'infinity'), turnover_decided_until = $3
WHERE id = $1
"""
# Facts that can still matter: those of periods ending after what was decided (every fact falls
# due at or before its period's end).
_RECORDED = """
SELECT period_start, reason FROM period_facts
WHERE subscription_id = $1 AND period_end > coalesce($2::timestamptz, '-infinity')
"""
_RECORD = """
INSERT INTO period_facts (subscription_id, period_start, reason, org_id, period_end, idempotency_key,
                          transaction_id, credits)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::uuid[], $5::timestamptz[], $6::text[],
                     $7::uuid[], $8::bigint[])
ON CONFLICT (subscription_id, period_start, reason, org_id) DO NOTHING
"""
_FACTS_OF = """
SELECT subscription_id, org_id, period_start, period_end, reason, idempotency_key, transaction_id, credits, recorded_at
FROM period_facts WHERE subscription_id = $1 ORDER BY period_start, recorded_at, reason
"""


@dataclass(frozen=True, slots=True)
class Claim:
    subscription_id: UUID
    decided_until: datetime | None


@dataclass(frozen=True, slots=True)
class PeriodFact:
    subscription_id: UUID
    organization_id: UUID
    period_start: datetime
    period_end: datetime
    reason: str
    idempotency_key: str
    transaction_id: UUID | None = None  # the ledger transaction that carried it; None: no command
    credits: int | None = None  # 'base': micro-credits granted
    recorded_at: datetime | None = None  # set by the store


async def lock_subscription(connection: asyncpg.Connection, subscription_id: UUID) -> Claim | None:
    """Take the subscription's row lock (waiting for a run that holds it); None if there is none."""
    row = await connection.fetchrow(_LOCK, subscription_id)
    return None if row is None else Claim(subscription_id, row["turnover_decided_until"])


async def claim_due(connection: asyncpg.Connection, now: datetime, done: Sequence[UUID]) -> Claim | None:
    """Lock the live subscription due soonest (by `now`) that no other run holds and is not in `done`."""
    row = await connection.fetchrow(_CLAIM_DUE, now, list(done))
    return None if row is None else Claim(row["id"], row["turnover_decided_until"])


async def schedule(
    connection: asyncpg.Connection, subscription_id: UUID, due_at: datetime | None, decided_until: datetime | None
) -> None:
    """When the subscription next has a fact due (None: never), and up to when all is decided."""
    await connection.execute(_SCHEDULE, subscription_id, due_at, decided_until)


async def recorded_facts(
    connection: asyncpg.Connection, subscription_id: UUID, decided_until: datetime | None
) -> list[RecordedFact]:
    rows = await connection.fetch(_RECORDED, subscription_id, decided_until)
    return [RecordedFact(row["period_start"], row["reason"]) for row in rows]


async def record_facts(connection: asyncpg.Connection, facts: Sequence[PeriodFact]) -> None:
    """Record the facts; one already there (its period and reason) is left as it is."""
    if not facts:
        return
    columns = zip(
        *(
            (f.subscription_id, f.period_start, f.reason, f.organization_id, f.period_end, f.idempotency_key,
             f.transaction_id, f.credits)
            for f in facts
        ),
        strict=True,
    )  # fmt: skip
    await connection.execute(_RECORD, *(list(column) for column in columns))


async def facts_of(connection: asyncpg.Connection | asyncpg.Pool, subscription_id: UUID) -> list[PeriodFact]:
    """Every fact of a subscription, by period."""
    rows = await connection.fetch(_FACTS_OF, subscription_id)
    return [
        PeriodFact(
            row["subscription_id"],
            row["org_id"],
            row["period_start"],
            row["period_end"],
            row["reason"],
            row["idempotency_key"],
            row["transaction_id"],
            row["credits"],
            row["recorded_at"],
        )
        for row in rows
    ]
