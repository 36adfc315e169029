"""Memberships: a user's role (and team, kit) in an organization, and the organization's member
and kit limits.

Every change to an organization's members runs in one transaction that first takes the org's
members lock (`lock_members`), so counting against a limit or the Owners and the write that follows
see no concurrent join, change or removal: an organization keeps at least one Owner, and never
passes its limits, however many requests race.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from ledger.core.errors import InvalidCommand, LastOwner, LimitReached, NotFound
from ledger.directory.roles import Role
from ledger.directory.teams import require_team


@dataclass(frozen=True, slots=True)
class Member:
    organization_id: UUID
    user_id: str
    role: Role
    email: str | None
    team_id: UUID | None
    kit: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Limits:
    """An organization's member and kit limits (None: unlimited) and how much of them is used."""

    organization_id: UUID
    member_limit: int | None
    kit_limit: int | None
    members: int
    kits: int


class Keep(enum.Enum):
    """A field a change leaves as it is (None would clear it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


def _member(row: asyncpg.Record) -> Member:
    data = dict(row)
    data["role"] = Role(data["role"])
    return Member(**data)


_COLUMNS = "org_id AS organization_id, user_id, role, email, team_id, kit, created_at"
_ROLES = """
SELECT m.org_id, m.user_id, m.role
FROM unnest($1::uuid[], $2::text[]) AS k (org_id, user_id)
JOIN members m ON m.org_id = k.org_id AND m.user_id = k.user_id
"""


async def roles_of(
    connection: asyncpg.Connection | asyncpg.Pool, keys: Sequence[tuple[UUID, str]]
) -> dict[tuple[UUID, str], Role]:
    """The role of each (organization, user) that is a member; the others are left out."""
    rows = await connection.fetch(_ROLES, [org for org, _ in keys], [user for _, user in keys])
    return {(row["org_id"], row["user_id"]): Role(row["role"]) for row in rows}


_BY_ORGS = f"SELECT {_COLUMNS} FROM members WHERE org_id = ANY($1::uuid[]) ORDER BY created_at, user_id"  # noqa: S608 - constant column lists


async def members_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID]
) -> dict[UUID, list[Member]]:
    found: dict[UUID, list[Member]] = {org: [] for org in organization_ids}
    for row in await connection.fetch(_BY_ORGS, organization_ids):
        found[row["organization_id"]].append(_member(row))
    return found


_BY_USER = f"SELECT {_COLUMNS} FROM members WHERE user_id = $1 ORDER BY created_at, org_id"  # noqa: S608 - constant column lists


async def memberships_of(connection: asyncpg.Connection | asyncpg.Pool, user_id: str) -> list[Member]:
    return [_member(row) for row in await connection.fetch(_BY_USER, user_id)]


_ONE = f"SELECT {_COLUMNS} FROM members WHERE org_id = $1 AND user_id = $2"  # noqa: S608 - constant column lists


async def member(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, user_id: str) -> Member | None:
    row = await connection.fetchrow(_ONE, organization_id, user_id)
    return None if row is None else _member(row)


_UPSERT = f"""
INSERT INTO members (org_id, user_id, role, email, team_id, kit) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (org_id, user_id) DO UPDATE
SET role = excluded.role, email = coalesce(excluded.email, members.email), team_id = excluded.team_id,
    kit = excluded.kit
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


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
    """Write the membership as given, checking no rule (seeds and tests; the API calls `add_member`)."""
    row = await connection.fetchrow(_UPSERT, organization_id, user_id, role.value, email, team_id, kit)
    return _member(row)


_UPDATE = f"""
UPDATE members SET role = $3, team_id = $4, kit = $5, email = coalesce($6, email)
WHERE org_id = $1 AND user_id = $2
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def write_member(
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


_DELETE = f"DELETE FROM members WHERE org_id = $1 AND user_id = $2 RETURNING {_COLUMNS}"  # noqa: S608 - constant column lists


async def delete_member(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, user_id: str
) -> Member | None:
    row = await connection.fetchrow(_DELETE, organization_id, user_id)
    return None if row is None else _member(row)


_OWNERS = "SELECT count(*) FROM members WHERE org_id = $1 AND role = 'owner'"


async def owner_count(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID) -> int:
    return int(await connection.fetchval(_OWNERS, organization_id))


_LIMITS = """
SELECT o.id AS organization_id, o.member_limit, o.kit_limit,
       count(m.user_id)::int AS members, count(m.kit)::int AS kits
FROM organizations o LEFT JOIN members m ON m.org_id = o.id
WHERE o.id = ANY($1::uuid[])
GROUP BY o.id
"""


async def limits_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID]
) -> dict[UUID, Limits]:
    """Each existing org's limits and counts: members, and members holding a kit."""
    return {row["organization_id"]: Limits(**dict(row)) for row in await connection.fetch(_LIMITS, organization_ids)}


_SET_LIMITS = "UPDATE organizations SET member_limit = $2, kit_limit = $3 WHERE id = $1"


async def write_limits(
    connection: asyncpg.Connection | asyncpg.Pool,
    organization_id: UUID,
    member_limit: int | None,
    kit_limit: int | None,
) -> None:
    await connection.execute(_SET_LIMITS, organization_id, member_limit, kit_limit)


# Every change to an org's members takes this lock first, so counting against a limit and the
# write that follows see no concurrent join (the org's row is the ledger worker's to lock, not ours).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('members:' || $1::uuid, 0))"


async def lock_members(connection: asyncpg.Connection, organization_id: UUID) -> None:
    """Serialize changes to one org's members until the transaction ends."""
    await connection.execute(_LOCK, organization_id)


# The rules: pure, given what the transaction read under the lock.


def demotes_an_owner(existing: Member, role: Role | None) -> bool:
    """Whether giving the member `role` (None: removing them) takes an Owner away."""
    return existing.role is Role.OWNER and role is not Role.OWNER


def keep_an_owner(owners: int) -> None:
    """Refuse to demote or remove an organization's last Owner."""
    if owners <= 1:
        raise LastOwner("an organization keeps at least one Owner: make another member Owner first")


def within_limits(limits: Limits, *, joining: bool, taking_kit: bool) -> None:
    """Refuse a new member past the member limit, or a new kit holder past the kit limit."""
    if joining and limits.member_limit is not None and limits.members >= limits.member_limit:
        raise LimitReached(f"the organization has its limit of {limits.member_limit} members")
    if taking_kit and limits.kit_limit is not None and limits.kits >= limits.kit_limit:
        raise LimitReached(f"the organization has its limit of {limits.kit_limit} kits assigned")


def not_a_member_yet(existing: Member | None) -> None:
    """Joining is for newcomers: a member's role is changed, not joined again."""
    if existing is not None:
        raise InvalidCommand("you are a member of this organization already; an Owner can change your role")


# The transactions: each under the organization's members lock.


async def require_room(
    connection: asyncpg.Connection, organization_id: UUID, *, joining: bool, taking_kit: bool
) -> None:
    """Check the limits as they stand under the lock."""
    within_limits(
        (await limits_by_orgs(connection, [organization_id]))[organization_id], joining=joining, taking_kit=taking_kit
    )


async def _keep_an_owner(connection: asyncpg.Connection, existing: Member, role: Role | None) -> None:
    if demotes_an_owner(existing, role):
        keep_an_owner(await owner_count(connection, existing.organization_id))


async def _existing(connection: asyncpg.Connection, organization_id: UUID, user_id: str) -> Member:
    found = await member(connection, organization_id, user_id)
    if found is None:
        raise NotFound("member not found")
    return found


async def add_member(
    pool: asyncpg.Pool,
    organization_id: UUID,
    user_id: str,
    role: Role,
    *,
    email: str | None,
    team_id: UUID | None,
    kit: str | None,
) -> Member:
    """Make a user a member within the limits, or set a member's role, team and kit (and email,
    when given): retrying is safe. The last Owner is not demoted."""
    await require_team(pool, organization_id, team_id)
    async with pool.acquire() as connection, connection.transaction():
        await lock_members(connection, organization_id)
        existing = await member(connection, organization_id, user_id)
        if existing is not None:
            await _keep_an_owner(connection, existing, role)
        taking_kit = kit is not None and (existing is None or existing.kit is None)
        await require_room(connection, organization_id, joining=existing is None, taking_kit=taking_kit)
        return await put_member(connection, organization_id, user_id, role, email=email, team_id=team_id, kit=kit)


@dataclass(frozen=True, slots=True)
class MemberChange:
    """What `change_member` sets; `KEEP` (the default) leaves a field as it is."""

    role: Role | Keep = KEEP
    team_id: UUID | Keep | None = KEEP
    kit: str | Keep | None = KEEP


async def change_member(pool: asyncpg.Pool, organization_id: UUID, user_id: str, change: MemberChange) -> Member:
    """Change a member's role, team or kit; the last Owner is not demoted, a new kit holder is
    within the kit limit."""
    if not isinstance(change.team_id, Keep):
        await require_team(pool, organization_id, change.team_id)
    async with pool.acquire() as connection, connection.transaction():
        await lock_members(connection, organization_id)
        existing = await _existing(connection, organization_id, user_id)
        role = existing.role if isinstance(change.role, Keep) else change.role
        team_id = existing.team_id if isinstance(change.team_id, Keep) else change.team_id
        kit = existing.kit if isinstance(change.kit, Keep) else change.kit
        await _keep_an_owner(connection, existing, role)
        if kit is not None and existing.kit is None:
            await require_room(connection, organization_id, joining=False, taking_kit=True)
        changed = await write_member(connection, organization_id, user_id, role, team_id=team_id, kit=kit)
    assert changed is not None  # under the lock, the member found is still there
    return changed


async def remove_member(pool: asyncpg.Pool, organization_id: UUID, user_id: str) -> Member:
    """Remove a member (effective on their next request); the last Owner cannot go."""
    async with pool.acquire() as connection, connection.transaction():
        await lock_members(connection, organization_id)
        existing = await _existing(connection, organization_id, user_id)
        await _keep_an_owner(connection, existing, None)
        removed = await delete_member(connection, organization_id, user_id)
    assert removed is not None  # under the lock, the member found is still there
    return removed


async def set_limits(
    pool: asyncpg.Pool, organization_id: UUID, member_limit: int | Keep | None, kit_limit: int | Keep | None
) -> Limits:
    """Set an organization's limits (None: unlimited). A limit below the current count keeps who
    is there and refuses new ones."""
    async with pool.acquire() as connection, connection.transaction():
        await lock_members(connection, organization_id)
        current = (await limits_by_orgs(connection, [organization_id]))[organization_id]
        await write_limits(
            connection,
            organization_id,
            current.member_limit if isinstance(member_limit, Keep) else member_limit,
            current.kit_limit if isinstance(kit_limit, Keep) else kit_limit,
        )
        return (await limits_by_orgs(connection, [organization_id]))[organization_id]
