"""Partners (resellers, white-label accounts): each sees and runs only its own sub-organizations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.errors import IdempotencyConflict


@dataclass(frozen=True, slots=True)
class Partner:
    id: UUID
    name: str
    created_at: datetime


_INSERT = """
INSERT INTO partners (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING
RETURNING id, name, created_at
"""


async def insert_partner(connection: asyncpg.Connection | asyncpg.Pool, id: UUID, name: str) -> Partner | None:
    """The new partner, or None when one with this id exists already."""
    row = await connection.fetchrow(_INSERT, id, name)
    return None if row is None else Partner(**dict(row))


_ONE = "SELECT id, name, created_at FROM partners WHERE id = $1"


async def partner(connection: asyncpg.Connection | asyncpg.Pool, id: UUID) -> Partner | None:
    row = await connection.fetchrow(_ONE, id)
    return None if row is None else Partner(**dict(row))


async def create_partner(connection: asyncpg.Connection | asyncpg.Pool, id: UUID, name: str) -> Partner:
    """The new partner; for a retry (an id that exists), the stored one if it has this name."""
    found = await insert_partner(connection, id, name) or await partner(connection, id)
    if found is None or found.name != name:
        raise IdempotencyConflict("a partner with this id exists with another name")
    return found
