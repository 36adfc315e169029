"""Moved to `ledger.directory.organizations`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from ledger.directory.organizations import Organization, organizations_by_ids

__all__ = ["Organization", "create_organization", "organizations_by_ids"]

# The old contract (a taken id raises UniqueViolationError), kept for the resolver that still
# catches it; the directory's `create_organization` answers None instead.
_INSERT = """
INSERT INTO organizations (id, name, partner_id) VALUES ($1, $2, $3)
RETURNING id, name, created_at, partner_id
"""


async def create_organization(
    connection: asyncpg.Connection | asyncpg.Pool, id: UUID, name: str, partner_id: UUID | None = None
) -> Organization:
    row = await connection.fetchrow(_INSERT, id, name, partner_id)
    return Organization(**dict(row))
