"""Teams (workspaces) of an organization: created by the API; their credits live in lots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Team:
    organization_id: UUID
    id: UUID
    name: str
    created_at: datetime


_INSERT = """
INSERT INTO teams (org_id, id, name) VALUES ($1, $2, $3)
ON CONFLICT (org_id, id) DO NOTHING
RETURNING org_id AS organization_id, id, name, created_at
"""
_ONE = "SELECT org_id AS organization_id, id, name, created_at FROM teams WHERE org_id = $1 AND id = $2"
_BY_ORGS = """
SELECT org_id AS organization_id, id, name, created_at FROM teams
WHERE org_id = ANY($1::uuid[]) ORDER BY created_at, id
"""


async def create_team(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, id: UUID, name: str) -> Team | None:
    """The new team, or None when a team with this id exists already."""
    row = await connection.fetchrow(_INSERT, org_id, id, name)
    return None if row is None else Team(**dict(row))


async def team(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, id: UUID) -> Team | None:
    row = await connection.fetchrow(_ONE, org_id, id)
    return None if row is None else Team(**dict(row))


async def teams_by_orgs(connection: asyncpg.Connection | asyncpg.Pool, org_ids: list[UUID]) -> dict[UUID, list[Team]]:
    found: dict[UUID, list[Team]] = {org: [] for org in org_ids}
    for row in await connection.fetch(_BY_ORGS, org_ids):
        found[row["organization_id"]].append(Team(**dict(row)))
    return found
