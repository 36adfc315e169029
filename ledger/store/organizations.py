"""Organizations: created by the API, read by everyone, never written by the ledger worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Organization:
    id: UUID
    name: str
    created_at: datetime
    # The partner whose sub-organization it is; None for the platform's own customers.
    partner_id: UUID | None = None


_INSERT = """
INSERT INTO organizations (id, name, partner_id) VALUES ($1, $2, $3)
RETURNING id, name, created_at, partner_id
"""
_BY_IDS = "SELECT id, name, created_at, partner_id FROM organizations WHERE id = ANY($1::uuid[])"


async def create_organization(
    connection: asyncpg.Connection | asyncpg.Pool, id: UUID, name: str, partner_id: UUID | None = None
) -> Organization:
    row = await connection.fetchrow(_INSERT, id, name, partner_id)
    return Organization(**dict(row))


async def organizations_by_ids(
    connection: asyncpg.Connection | asyncpg.Pool, ids: list[UUID]
) -> dict[UUID, Organization]:
    rows = await connection.fetch(_BY_IDS, ids)
    return {row["id"]: Organization(**dict(row)) for row in rows}
