"""An organization's alert events read back for the API: newest first, a page at a time by keyset
on (at, id). The events are written by the journal, with the commands that fired them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.commands import AlertKind
from ledger.core.entries import AlertEvent, AlertState
from ledger.core.money import MicroCredits

# As in the history: optional bounds become infinite ones, so the index on (org_id, at, id) serves.
_PAGE = """
SELECT id, alert_id, transaction_id, state, kind, name, threshold, value, team_id, user_id, at
FROM alert_events
WHERE org_id = $1
  AND (at, id) < (coalesce($2::timestamptz, 'infinity'), coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
  AND ($4::uuid IS NULL OR alert_id = $4::uuid)
ORDER BY at DESC, id DESC
LIMIT $5
"""


async def alert_events_page(
    connection: asyncpg.Connection | asyncpg.Pool,
    org_id: UUID,
    *,
    before: tuple[datetime, UUID] | None,
    limit: int,
    alert_id: UUID | None = None,
) -> list[AlertEvent]:
    """Up to `limit` events older than `before` on (at, id), newest first."""
    at, id_ = before if before is not None else (None, None)
    rows = await connection.fetch(_PAGE, org_id, at, id_, alert_id, limit)
    return [
        AlertEvent(
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
        )
        for row in rows
    ]
