"""An organization's alert events read back for the API, keyset-paged on (committed at, id): newest
first for the history, oldest first after a key for a live stream. The events are written by the
journal, in the batch of the commands that fired them, so a key's committed_at only grows per
organization (its batches are written one after the other) and a reader paging on misses none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from ledger.core.commands import AlertKind
from ledger.core.entries import AlertEvent, AlertState
from ledger.core.money import MicroCredits


@dataclass(frozen=True, slots=True)
class AlertEventKey:
    committed_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class JournaledAlertEvent:
    key: AlertEventKey
    event: AlertEvent


_COLUMNS = "id, alert_id, transaction_id, state, kind, name, threshold, value, team_id, user_id, at, committed_at"
# As in the history: optional bounds become infinite ones, so the index on (org_id, committed_at, id) serves.
_NEWEST = f"""
SELECT {_COLUMNS} FROM alert_events
WHERE org_id = $1
  AND (committed_at, id) < (coalesce($2::timestamptz, 'infinity'),
                            coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
  AND ($4::uuid IS NULL OR alert_id = $4::uuid)
ORDER BY committed_at DESC, id DESC
LIMIT $5
"""  # noqa: S608 - a constant column list
_AFTER = f"""
SELECT {_COLUMNS} FROM alert_events
WHERE org_id = $1 AND (committed_at, id) > ($2, $3)
ORDER BY committed_at, id
LIMIT $4
"""  # noqa: S608 - a constant column list
_LATEST = "SELECT committed_at, id FROM alert_events WHERE org_id = $1 ORDER BY committed_at DESC, id DESC LIMIT 1"
_NO_KEY = AlertEventKey(datetime.min.replace(tzinfo=UTC), UUID(int=0))


async def alert_events_page(
    connection: asyncpg.Connection | asyncpg.Pool,
    org_id: UUID,
    *,
    before: AlertEventKey | None,
    limit: int,
    alert_id: UUID | None = None,
) -> list[JournaledAlertEvent]:
    """Up to `limit` events older than `before`, newest first."""
    at, id_ = (before.committed_at, before.id) if before is not None else (None, None)
    return [_event(row) for row in await connection.fetch(_NEWEST, org_id, at, id_, alert_id, limit)]


async def alert_events_after(
    connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, after: AlertEventKey, limit: int
) -> list[JournaledAlertEvent]:
    """Up to `limit` events journaled after `after`, oldest first."""
    return [_event(row) for row in await connection.fetch(_AFTER, org_id, after.committed_at, after.id, limit)]


async def latest_alert_key(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID) -> AlertEventKey:
    """Where the organization's alert events end now (before anything, when there are none)."""
    row = await connection.fetchrow(_LATEST, org_id)
    return _NO_KEY if row is None else AlertEventKey(row["committed_at"], row["id"])


def _event(row: asyncpg.Record) -> JournaledAlertEvent:
    return JournaledAlertEvent(
        key=AlertEventKey(row["committed_at"], row["id"]),
        event=AlertEvent(
            id=row["id"],
            alert_id=row["alert_id"],
            transaction_id=row["transaction_id"],
            state=AlertState(row["state"]),
            kind=AlertKind(row["kind"]),
            name=row["name"],
            threshold=MicroCredits(row["threshold"]),
            value=MicroCredits(row["value"]),
            at=row["at"],
            team_id=row["team_id"],
            user_id=row["user_id"],
        ),
    )
