"""Teams (workspaces) of an organization: created by the API; their credits live in lots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.errors import IdempotencyConflict, NotFound


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


async def insert_team(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID, name: str
) -> Team | None:
    """The new team, or None when the organization has a team with this id already."""
    row = await connection.fetchrow(_INSERT, organization_id, id, name)
    return None if row is None else Team(**dict(row))


_ONE = "SELECT org_id AS organization_id, id, name, created_at FROM teams WHERE org_id = $1 AND id = $2"


async def team(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID) -> Team | None:
    row = await connection.fetchrow(_ONE, organization_id, id)
    return None if row is None else Team(**dict(row))


_BY_ORGS = """
SELECT org_id AS organization_id, id, name, created_at FROM teams
WHERE org_id = ANY($1::uuid[]) ORDER BY created_at, id
"""


async def teams_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID]
) -> dict[UUID, list[Team]]:
    found: dict[UUID, list[Team]] = {org: [] for org in organization_ids}
    for row in await connection.fetch(_BY_ORGS, organization_ids):
        found[row["organization_id"]].append(Team(**dict(row)))
    return found


async def create_team(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID, name: str
) -> Team:
    """The new team; for a retry (an id the organization has), the stored one if it has this name."""
    created = await insert_team(connection, organization_id, id, name)
    if created is not None:
        return created
    existing = await team(connection, organization_id, id)
    if existing is None or existing.name != name:
        raise IdempotencyConflict("a team with this id exists with another name")
    return existing


async def require_team(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, team_id: UUID | None
) -> UUID | None:
    """The team (or none), which must be the organization's: another org's team is as unknown as
    a made-up id."""
    if team_id is not None and await team(connection, organization_id, team_id) is None:
        raise NotFound("team not found")
    return team_id
