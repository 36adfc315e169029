"""Dunning rows in PostgreSQL (`dunning`, one per unpaid invoice, migration 016).

A row is opened at an invoice's first failed charge; each later failed attempt raises `attempts`
(never lowers it: hooks run again on replays) and sets the next attempt's time from the pure
schedule (`ledger.billing.dunning`); a payment resolves it. The runner claims rows with
`FOR UPDATE SKIP LOCKED` in short transactions and never holds a row's lock while it charges,
since the payment's hooks update the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.dunning import next_attempt_at
from ledger.store.pool import Connection

_COLUMNS = "invoice_id, org_id, first_failed_at, attempts, next_attempt_at, suspended_at, resolved_at"
# A first failure opens the row; a later one (or a replay) raises attempts to at least `attempts`.
_FAILED = f"""
INSERT INTO dunning (invoice_id, org_id, first_failed_at, attempts, next_attempt_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (invoice_id, org_id) DO UPDATE
SET attempts = greatest(dunning.attempts, excluded.attempts), updated_at = now(),
    next_attempt_at = CASE WHEN excluded.attempts > dunning.attempts THEN $6 ELSE dunning.next_attempt_at END
WHERE dunning.resolved_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - a constant column list
_OF = f"SELECT {_COLUMNS} FROM dunning WHERE invoice_id = $1"  # noqa: S608 - a constant column list
_RESOLVE = f"""
UPDATE dunning SET resolved_at = $2, next_attempt_at = NULL, updated_at = now()
WHERE invoice_id = $1 AND resolved_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - a constant column list
_RETRIES_DUE = f"""
SELECT {_COLUMNS} FROM dunning
WHERE resolved_at IS NULL AND next_attempt_at <= $1
ORDER BY next_attempt_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - a constant column list
_SUSPENSIONS_DUE = f"""
SELECT {_COLUMNS} FROM dunning
WHERE resolved_at IS NULL AND suspended_at IS NULL AND first_failed_at <= $1
ORDER BY first_failed_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - a constant column list
_LOCK = "SELECT 1 FROM dunning WHERE invoice_id = $1 FOR UPDATE"
# Whether the organization is suspended or restored is decided under this lock (one flag per
# organization, suspended by any of its unpaid invoices).
_ORGANIZATION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('dunning:' || $1::uuid::text, 0))"
_STILL_SUSPENDING = """
SELECT EXISTS (SELECT 1 FROM dunning
               WHERE org_id = $1 AND invoice_id <> $2 AND suspended_at IS NOT NULL AND resolved_at IS NULL)
"""
_SUSPENDED = "UPDATE dunning SET suspended_at = $2, updated_at = now() WHERE invoice_id = $1 AND suspended_at IS NULL"
_ATTEMPTED = "UPDATE dunning SET next_attempt_at = $2, updated_at = now() WHERE invoice_id = $1"


@dataclass(frozen=True, slots=True)
class Dunning:
    invoice_id: UUID
    organization_id: UUID
    first_failed_at: datetime
    attempts: int  # charges tried so far (1: the renewal charge itself)
    next_attempt_at: datetime | None  # None: no more retries
    suspended_at: datetime | None
    resolved_at: datetime | None


def _dunning(row: asyncpg.Record) -> Dunning:
    return Dunning(
        row["invoice_id"], row["org_id"], row["first_failed_at"], row["attempts"], row["next_attempt_at"],
        row["suspended_at"], row["resolved_at"],
    )  # fmt: skip


async def record_failure(
    connection: Connection, invoice_id: UUID, organization_id: UUID, attempt: int, at: datetime
) -> Dunning | None:
    """Attempt `attempt` failed at `at`: open the row (the first failure dates the schedule) or raise
    its attempts. None when the invoice's dunning was resolved already (it was paid)."""
    existing = await dunning_of(connection, invoice_id)
    first = existing.first_failed_at if existing is not None else at
    row = await connection.fetchrow(
        _FAILED, invoice_id, organization_id, first, attempt, next_attempt_at(first, attempt),
        next_attempt_at(first, attempt),
    )  # fmt: skip
    return None if row is None else _dunning(row)


async def dunning_of(connection: Connection, invoice_id: UUID) -> Dunning | None:
    row = await connection.fetchrow(_OF, invoice_id)
    return None if row is None else _dunning(row)


async def lock(connection: asyncpg.Connection, invoice_id: UUID) -> None:
    """Take the row's lock (waiting for a run suspending its organization), if there is a row."""
    await connection.execute(_LOCK, invoice_id)


async def lock_organization(connection: asyncpg.Connection, organization_id: UUID) -> None:
    """Take the organization's suspension lock until the transaction ends."""
    await connection.execute(_ORGANIZATION_LOCK, organization_id)


async def still_suspending(connection: Connection, organization_id: UUID, paid_invoice_id: UUID) -> bool:
    """Whether another unpaid invoice of the organization keeps it suspended."""
    found: bool = await connection.fetchval(_STILL_SUSPENDING, organization_id, paid_invoice_id)
    return found


async def resolve(connection: Connection, invoice_id: UUID, at: datetime) -> Dunning | None:
    """The invoice was paid: its dunning ends (the row as it was resolved; None if none was open)."""
    row = await connection.fetchrow(_RESOLVE, invoice_id, at)
    return None if row is None else _dunning(row)


async def retries_due(connection: asyncpg.Connection, now: datetime, limit: int) -> list[Dunning]:
    """Open rows whose next attempt is due, locked (skipping those another run holds)."""
    return [_dunning(row) for row in await connection.fetch(_RETRIES_DUE, now, limit)]


async def suspensions_due(connection: asyncpg.Connection, failed_before: datetime, limit: int) -> list[Dunning]:
    """Open, not yet suspended rows whose first failure is at or before `failed_before`, locked."""
    return [_dunning(row) for row in await connection.fetch(_SUSPENSIONS_DUE, failed_before, limit)]


async def mark_suspended(connection: Connection, invoice_id: UUID, at: datetime) -> None:
    await connection.execute(_SUSPENDED, invoice_id, at)


async def set_next_attempt(connection: Connection, invoice_id: UUID, at: datetime | None) -> None:
    await connection.execute(_ATTEMPTED, invoice_id, at)
