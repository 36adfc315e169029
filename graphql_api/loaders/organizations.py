"""Organizations by id. A row never changes once written (its id, name, creation time and partner
are fixed, and organizations are never deleted), so every process keeps the rows it has read
(`known`, bounded) and asks PostgreSQL only for ids it has not seen, or that did not exist yet."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from graphql_api.known import KnownMap
from ledger.directory.organizations import Organization, organizations_by_ids


def organization_loader(
    pool: asyncpg.Pool, known: KnownMap[UUID, Organization]
) -> DataLoader[UUID, Organization | None]:
    async def load(ids: Sequence[UUID]) -> list[Organization | None]:
        unknown = known.unknown(ids)
        if unknown:
            known.add(await organizations_by_ids(pool, list(unknown)))
        return [known.get(org_id) for org_id in ids]

    return DataLoader(load_fn=load)
