"""Moved to `ledger.directory.invitations`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg

from ledger.directory.invitations import (
    TOKEN_MARK,
    Invitation,
    InvitationRequest,
    InvitationStatus,
    insert_invitation,
    invitation,
    invitation_by_key,
    invitation_for_token,
    invitation_token,
    invitations_by_orgs,
    mark_accepted,
    token_hash,
)
from ledger.directory.invitations import close_invitation as revoke_invitation
from ledger.directory.roles import Role

__all__ = [
    "TOKEN_MARK",
    "Invitation",
    "InvitationStatus",
    "create_invitation",
    "invitation",
    "invitation_by_key",
    "invitation_for_token",
    "invitation_token",
    "invitations_by_orgs",
    "mark_accepted",
    "revoke_invitation",
    "token_hash",
]


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
    request = InvitationRequest(organization_id, email, role, team_id, kit, idempotency_key, created_by, expires_in)
    return await insert_invitation(connection, id, request, token)
