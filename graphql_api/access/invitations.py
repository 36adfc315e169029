"""Invitations into an organization: a secret token, shown to the inviter, that one user accepts.

A token reads `inv_<43 characters>`: HMAC-SHA256 of the invitation's id under the service's user
token secret. Only its SHA-256 is stored, so the table alone never yields a usable token; but the
service can compute it again, so a retried `inviteMember` (same idempotency key) answers the same
token instead of none. Whoever holds that secret can sign user tokens anyway, so deriving from it
exposes nothing more.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from graphql_api.access.policy import Role

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


_COLUMNS = """id, org_id AS organization_id, email, role, team_id, kit, token_hash, idempotency_key, created_by,
created_at, expires_at, accepted_at, accepted_by, revoked_at"""
# expires_at from the same now() as created_at, so a retry can compare the asked-for duration exactly.
_INSERT = f"""
INSERT INTO invitations (id, org_id, email, role, team_id, kit, token_hash, idempotency_key, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10::interval)
ON CONFLICT (org_id, idempotency_key) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists
_BY_KEY = f"SELECT {_COLUMNS} FROM invitations WHERE org_id = $1 AND idempotency_key = $2"  # noqa: S608 - constant column lists
_ONE = f"SELECT {_COLUMNS} FROM invitations WHERE org_id = $1 AND id = $2"  # noqa: S608 - constant column lists
_BY_TOKEN = f"SELECT {_COLUMNS} FROM invitations WHERE token_hash = $1 FOR UPDATE"  # noqa: S608 - constant column lists
_BY_ORGS = f"""
SELECT {_COLUMNS} FROM invitations
WHERE org_id = ANY($1::uuid[])
  AND ($2 OR (accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()))
ORDER BY created_at, id
"""  # noqa: S608 - constant column lists
# Revoking an accepted invitation would change nothing: the member is removed with removeMember.
_REVOKE = f"""
UPDATE invitations SET revoked_at = coalesce(revoked_at, now())
WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists
_ACCEPT = f"""
UPDATE invitations SET accepted_at = now(), accepted_by = $2
WHERE id = $1 AND accepted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


def _invitation(row: asyncpg.Record) -> Invitation:
    data = dict(row)
    data["role"] = Role(data["role"])
    data["token_hash"] = bytes(data["token_hash"])
    return Invitation(**data)


async def create_invitation(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    id: UUID,
    organization_id: UUID,
    email: str,
    role: Role,
    team_id: UUID | None,
    kit: str | None,
    token: str,
    idempotency_key: str,
    created_by: str,
    expires_in: timedelta,
) -> Invitation | None:
    """The new invitation, or None when the org already has one under this idempotency key."""
    row = await connection.fetchrow(
        _INSERT, id, organization_id, email, role.value, team_id, kit, token_hash(token), idempotency_key,
        created_by, expires_in,
    )  # fmt: skip
    return None if row is None else _invitation(row)


async def invitation_by_key(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, idempotency_key: str
) -> Invitation | None:
    row = await connection.fetchrow(_BY_KEY, organization_id, idempotency_key)
    return None if row is None else _invitation(row)


async def invitation(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID
) -> Invitation | None:
    row = await connection.fetchrow(_ONE, organization_id, id)
    return None if row is None else _invitation(row)


async def invitation_for_token(connection: asyncpg.Connection, token: str) -> Invitation | None:
    """The invitation this token opens, locked until the transaction ends (one acceptance wins)."""
    row = await connection.fetchrow(_BY_TOKEN, token_hash(token))
    return None if row is None else _invitation(row)


async def invitations_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, organization_ids: list[UUID], include_closed: bool
) -> dict[UUID, list[Invitation]]:
    """Each org's pending invitations, or all of them with `include_closed`, oldest first."""
    found: dict[UUID, list[Invitation]] = {org: [] for org in organization_ids}
    for row in await connection.fetch(_BY_ORGS, organization_ids, include_closed):
        found[row["organization_id"]].append(_invitation(row))
    return found


async def revoke_invitation(
    connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID, id: UUID
) -> Invitation | None:
    """The revoked invitation (revoking twice keeps the first time); None when unknown or accepted."""
    row = await connection.fetchrow(_REVOKE, organization_id, id)
    return None if row is None else _invitation(row)


async def mark_accepted(connection: asyncpg.Connection, id: UUID, user_id: str) -> Invitation | None:
    row = await connection.fetchrow(_ACCEPT, id, user_id)
    return None if row is None else _invitation(row)
