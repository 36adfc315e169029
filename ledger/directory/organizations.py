"""Organizations: created by the API, read by everyone, never written by the ledger worker
(which keeps only its own column, `credit_drawn`, on the row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.errors import IdempotencyConflict


@dataclass(frozen=True, slots=True)
class Organization:
    id: UUID
    name: str
    created_at: datetime
    # The partner whose sub-organization it is; None for the platform's own customers.
    partner_id: UUID | None = None


_INSERT = """
INSERT INTO organizations (id, name, partner_id) VALUES ($1, $2, $3)
ON CONFLICT (id) DO NOTHING
RETURNING id, name, created_at, partner_id
"""


async def create_organization(
    connection: asyncpg.Connection | asyncpg.Pool, id: UUID, name: str, partner_id: UUID | None = None
) -> Organization | None:
    """The new organization, or None when one with this id exists already.

    A retry is two steps on purpose: the stored organization is shown only to whoever may read it
    (the API decides that between them), and only then compared (`same_organization`), so another
    tenant's id answers as a refusal, never as a conflict that confirms it exists.
    """
    row = await connection.fetchrow(_INSERT, id, name, partner_id)
    return None if row is None else Organization(**dict(row))


_BY_IDS = "SELECT id, name, created_at, partner_id FROM organizations WHERE id = ANY($1::uuid[])"


async def organizations_by_ids(
    connection: asyncpg.Connection | asyncpg.Pool, ids: list[UUID]
) -> dict[UUID, Organization]:
    rows = await connection.fetch(_BY_IDS, ids)
    return {row["id"]: Organization(**dict(row)) for row in rows}


def same_organization(existing: Organization, name: str, partner_id: UUID | None) -> Organization:
    """A retried creation's answer: the stored organization, unless it was made otherwise."""
    if existing.name != name or existing.partner_id != partner_id:
        raise IdempotencyConflict("an organization with this id exists with another name")
    return existing
