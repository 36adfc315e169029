"""Invitations into an organization: a secret token, shown to the inviter, that one user accepts.

A token reads `inv_<43 characters>`: HMAC-SHA256 of the invitation's id under the service's user
token secret. Only its SHA-256 is stored, so the table alone never yields a usable token; but the
service can compute it again, so a retried invitation (same idempotency key) answers the same
token instead of none. Whoever holds that secret can sign user tokens anyway, so deriving from it
exposes nothing more.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from ledger.core.errors import Forbidden, IdempotencyConflict, InvalidCommand, NotFound
from ledger.directory.members import Member, lock_members, member, not_a_member_yet, put_member, require_room
from ledger.directory.organizations import organizations_by_ids
from ledger.directory.roles import Role
from ledger.directory.teams import require_team

TOKEN_MARK = "inv_"  # noqa: S105 - a marker, not a secret


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Invitation:
    id: UUID
    organization_id: UUID
    email: str
    role: Role
    team_id: UUID | None
    kit: str | None
    token_hash: bytes
    idempotency_key: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    accepted_by: str | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> InvitationStatus:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= now:
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING


def invitation_token(secret: bytes, invitation_id: UUID) -> str:
    digest = hmac.new(secret, b"credit-ledger invitation " + invitation_id.bytes, hashlib.sha256).digest()
    return TOKEN_MARK + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _invitation(row: asyncpg.Record) -> Invitation:
    data = dict(row)
    data["role"] = Role(data["role"])
    data["token_hash"] = bytes(data["token_hash"])
    return Invitation(**data)


@dataclass(frozen=True, slots=True)
class InvitationRequest:
    """What an invitation is for; the same request again (same idempotency key) is a retry."""

    organization_id: UUID
    email: str
    role: Role
    team_id: UUID | None
    kit: str | None
    idempotency_key: str
    # Who invites: user:<user id> or api_key:<key id>.
    created_by: str
    expires_in: timedelta


_COLUMNS = """id, org_id AS organization_id, email, role, team_id, kit, token_hash, idempotency_key, created_by,
created_at, expires_at, accepted_at, accepted_by, revoked_at"""
# expires_at from the same now() as created_at, so a retry can compare the asked-for duration exactly.
_INSERT = f"""
INSERT INTO invitations (id, org_id, email, role, team_id, kit, token_hash, idempotency_key, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10::interval)
ON CONFLICT (org_id, idempotency_key) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def insert_invitation(
    connection: asyncpg.Connection | asyncpg.Pool, id: UUID, request: InvitationRequest, token: str
) -> Invitation | None:
    """The new invitation, or None when the org already has one under this idempotency key."""
    row = await connection.fetchrow(
        _INSERT, id, request.organization_id, request.email, request.role.value, request.team_id, request.kit,
        token_hash(token), request.idempotency_key, request.created_by, request.expires_in,
    )  # fmt: skip
    return None if row is None else _invitation(row)


_BY_KEY = f"SELECT {_COLUMNS} FROM invitations WHERE org_id = $1 AND idempotency_key = $2"  # noqa: S608 - constant column lists


async def invitation_by_key(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, idempotency_key: str
) -> Invitation | None:
    row = await connection.fetchrow(_BY_KEY, organization_id, idempotency_key)
    return None if row is None else _invitation(row)


_ONE = f"SELECT {_COLUMNS} FROM invitations WHERE org_id = $1 AND id = $2"  # noqa: S608 - constant column lists


async def invitation(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID
) -> Invitation | None:
    row = await connection.fetchrow(_ONE, organization_id, id)
    return None if row is None else _invitation(row)


_BY_TOKEN = f"SELECT {_COLUMNS} FROM invitations WHERE token_hash = $1 FOR UPDATE"  # noqa: S608 - constant column lists


async def invitation_for_token(connection: asyncpg.Connection, token: str) -> Invitation | None:
    """The invitation this token opens, locked until the transaction ends (one acceptance wins)."""
    row = await connection.fetchrow(_BY_TOKEN, token_hash(token))
    return None if row is None else _invitation(row)


_BY_ORGS = f"""
SELECT {_COLUMNS} FROM invitations
WHERE org_id = ANY($1::uuid[])
  AND ($2 OR (accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()))
ORDER BY created_at, id
"""  # noqa: S608 - constant column lists


async def invitations_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID], include_closed: bool
) -> dict[UUID, list[Invitation]]:
    """Each org's pending invitations, or all of them with `include_closed`, oldest first."""
    found: dict[UUID, list[Invitation]] = {org: [] for org in organization_ids}
    for row in await connection.fetch(_BY_ORGS, organization_ids, include_closed):
        found[row["organization_id"]].append(_invitation(row))
    return found


# Revoking an accepted invitation would change nothing: the member is removed with removeMember.
_REVOKE = f"""
UPDATE invitations SET revoked_at = coalesce(revoked_at, now())
WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def close_invitation(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID
) -> Invitation | None:
    """The revoked invitation (revoking twice keeps the first time); None when unknown or accepted."""
    row = await connection.fetchrow(_REVOKE, organization_id, id)
    return None if row is None else _invitation(row)


_ACCEPT = f"""
UPDATE invitations SET accepted_at = now(), accepted_by = $2
WHERE id = $1 AND accepted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def mark_accepted(connection: asyncpg.Connection, id: UUID, user_id: str) -> Invitation | None:
    row = await connection.fetchrow(_ACCEPT, id, user_id)
    return None if row is None else _invitation(row)


# The rules.


def same_invitation(existing: Invitation | None, request: InvitationRequest) -> Invitation:
    """A retry's invitation: the one stored under the key, if it was asked for exactly so."""
    asked = (request.email, request.role, request.team_id, request.kit)
    if (
        existing is None
        or (existing.email, existing.role, existing.team_id, existing.kit) != asked
        or existing.expires_at - existing.created_at != request.expires_in
    ):
        raise IdempotencyConflict("this idempotency key was used for another invitation")
    return existing


def acceptable(found: Invitation | None, now: datetime) -> Invitation:
    """The invitation a token opens, if it still may be accepted."""
    if found is None:
        raise NotFound("no invitation has this token")
    match found.status(now):
        case InvitationStatus.ACCEPTED:
            raise InvalidCommand("this invitation was accepted already")
        case InvitationStatus.REVOKED:
            raise InvalidCommand("this invitation was revoked")
        case InvitationStatus.EXPIRED:
            raise InvalidCommand("this invitation has expired: ask for a new one")
    return found


# The operations.


@dataclass(frozen=True, slots=True)
class Invited:
    invitation: Invitation
    # The secret to accept it with; None on a retry after the signing secret changed (it could not
    # be accepted then anyway).
    token: str | None


async def invite(pool: asyncpg.Pool, request: InvitationRequest, secret: bytes) -> Invited:
    """A new invitation and its token; a retry (same key, same request) answers the same ones."""
    await require_team(pool, request.organization_id, request.team_id)
    invitation_id = uuid.uuid4()
    token = invitation_token(secret, invitation_id)
    created = await insert_invitation(pool, invitation_id, request, token)
    if created is not None:
        return Invited(created, token)
    existing = same_invitation(await invitation_by_key(pool, request.organization_id, request.idempotency_key), request)
    token = invitation_token(secret, existing.id)
    return Invited(existing, token if token_hash(token) == existing.token_hash else None)


async def revoke_invitation(pool: asyncpg.Pool, organization_id: UUID, id: UUID) -> Invitation:
    """Revoke a pending invitation: its token stops working at once. A revoked one answers as it is."""
    revoked = await close_invitation(pool, organization_id, id)
    if revoked is not None:
        return revoked
    if await invitation(pool, organization_id, id) is None:
        raise NotFound("invitation not found")
    raise InvalidCommand("this invitation was accepted already: remove the member with removeMember instead")


async def accept_invitation(pool: asyncpg.Pool, token: str, user_id: str, partner_id: UUID | None) -> Member:
    """Join the invitation's organization as `user_id`, with its role, team and kit, within the
    limits; a token works once. A user token a partner minted (`partner_id`) joins only that
    partner's organizations: a partner's user ids are its own, so its token cannot claim a seat in
    another partner's org."""
    if not token.startswith(TOKEN_MARK):
        raise NotFound("no invitation has this token")
    async with pool.acquire() as connection, connection.transaction():
        found = acceptable(await invitation_for_token(connection, token), datetime.now(UTC))
        organization_id = found.organization_id
        if partner_id is not None:
            organization = (await organizations_by_ids(connection, [organization_id]))[organization_id]
            if organization.partner_id != partner_id:
                raise Forbidden("this user token works only in its partner's organizations")
        await lock_members(connection, organization_id)
        not_a_member_yet(await member(connection, organization_id, user_id))
        await require_room(connection, organization_id, joining=True, taking_kit=found.kit is not None)
        joined = await put_member(
            connection, organization_id, user_id, found.role, email=found.email, team_id=found.team_id, kit=found.kit
        )
        await mark_accepted(connection, found.id, user_id)
    return joined
