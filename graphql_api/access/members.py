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


@dataclass(frozen=True, slots=True)
class Limits:
    """An organization's member and kit limits (None: unlimited) and how much of them is used."""

    organization_id: UUID
    member_limit: int | None
    kit_limit: int | None
    members: int
    kits: int


_ONE = f"SELECT {_COLUMNS} FROM members WHERE org_id = $1 AND user_id = $2"  # noqa: S608 - constant column lists
# Every change to an org's members takes this lock first, so counting against a limit and the
# write that follows see no concurrent join (the org's row is the ledger worker's to lock, not ours).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('members:' || $1::uuid, 0))"
_UPDATE = f"""
UPDATE members SET role = $3, team_id = $4, kit = $5, email = coalesce($6, email)
WHERE org_id = $1 AND user_id = $2
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists
_DELETE = f"DELETE FROM members WHERE org_id = $1 AND user_id = $2 RETURNING {_COLUMNS}"  # noqa: S608 - constant column lists
_OWNERS = "SELECT count(*) FROM members WHERE org_id = $1 AND role = 'owner'"
_LIMITS = """
SELECT o.id AS organization_id, o.member_limit, o.kit_limit,
       count(m.user_id)::int AS members, count(m.kit)::int AS kits
FROM organizations o LEFT JOIN members m ON m.org_id = o.id
WHERE o.id = ANY($1::uuid[])
GROUP BY o.id
"""
_SET_LIMITS = "UPDATE organizations SET member_limit = $2, kit_limit = $3 WHERE id = $1"


async def lock_members(connection: asyncpg.Connection, organization_id: UUID) -> None:
    """Serialize changes to one org's members until the transaction ends."""
    await connection.execute(_LOCK, organization_id)


async def member(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, user_id: str) -> Member | None:
    row = await connection.fetchrow(_ONE, organization_id, user_id)
    return None if row is None else _member(row)


async def update_member(
    connection: asyncpg.Connection | asyncpg.Pool,
    organization_id: UUID,
    user_id: str,
    role: Role,
    *,
    team_id: UUID | None,
    kit: str | None,
    email: str | None = None,
) -> Member | None:
    """Set the member's role, team and kit (and email, when given); None when not a member."""
    row = await connection.fetchrow(_UPDATE, organization_id, user_id, role.value, team_id, kit, email)
    return None if row is None else _member(row)


async def remove_member(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, user_id: str
) -> Member | None:
    row = await connection.fetchrow(_DELETE, organization_id, user_id)
    return None if row is None else _member(row)


async def owner_count(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID) -> int:
    return int(await connection.fetchval(_OWNERS, organization_id))


async def limits_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID]
) -> dict[UUID, Limits]:
    """Each existing org's limits and counts: members, and members holding a kit."""
    return {row["organization_id"]: Limits(**dict(row)) for row in await connection.fetch(_LIMITS, organization_ids)}


async def set_limits(
    connection: asyncpg.Connection | asyncpg.Pool,
    organization_id: UUID,
    member_limit: int | None,
    kit_limit: int | None,
) -> None:
    await connection.execute(_SET_LIMITS, organization_id, member_limit, kit_limit)
