"""Memberships: a user's role (and team, kit) in an organization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from graphql_api.access.policy import Role


@dataclass(frozen=True, slots=True)
class Member:
    organization_id: UUID
    user_id: str
    role: Role
    email: str | None
    team_id: UUID | None
    kit: str | None
    created_at: datetime


_COLUMNS = "org_id AS organization_id, user_id, role, email, team_id, kit, created_at"
_ROLES = """
SELECT m.org_id, m.user_id, m.role
FROM unnest($1::uuid[], $2::text[]) AS k (org_id, user_id)
JOIN members m ON m.org_id = k.org_id AND m.user_id = k.user_id
"""
_BY_ORGS = f"SELECT {_COLUMNS} FROM members WHERE org_id = ANY($1::uuid[]) ORDER BY created_at, user_id"  # noqa: S608 - constant column lists
_BY_USER = f"SELECT {_COLUMNS} FROM members WHERE user_id = $1 ORDER BY created_at, org_id"  # noqa: S608 - constant column lists
_UPSERT = f"""
INSERT INTO members (org_id, user_id, role, email, team_id, kit) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (org_id, user_id) DO UPDATE
SET role = excluded.role, email = coalesce(excluded.email, members.email), team_id = excluded.team_id,
    kit = excluded.kit
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


def _member(row: asyncpg.Record) -> Member:
    data = dict(row)
    data["role"] = Role(data["role"])
    return Member(**data)


async def roles_of(
    connection: asyncpg.Connection | asyncpg.Pool, keys: Sequence[tuple[UUID, str]]
) -> dict[tuple[UUID, str], Role]:
    rows = await connection.fetch(_ROLES, [org for org, _ in keys], [user for _, user in keys])
    return {(row["org_id"], row["user_id"]): Role(row["role"]) for row in rows}


async def members_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID]
) -> dict[UUID, list[Member]]:
    found: dict[UUID, list[Member]] = {org: [] for org in organization_ids}
    for row in await connection.fetch(_BY_ORGS, organization_ids):
        found[row["organization_id"]].append(_member(row))
    return found


async def memberships_of(connection: asyncpg.Connection | asyncpg.Pool, user_id: str) -> list[Member]:
    return [_member(row) for row in await connection.fetch(_BY_USER, user_id)]


async def put_member(
    connection: asyncpg.Connection | asyncpg.Pool,
    organization_id: UUID,
    user_id: str,
    role: Role,
    *,
    email: str | None = None,
    team_id: UUID | None = None,
    kit: str | None = None,
) -> Member:
    row = await connection.fetchrow(_UPSERT, organization_id, user_id, role.value, email, team_id, kit)
    return _member(row)
