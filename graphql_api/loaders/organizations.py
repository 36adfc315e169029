from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.organizations import Organization, organizations_by_ids


def organization_loader(pool: asyncpg.Pool) -> DataLoader[UUID, Organization | None]:
    async def load(ids: Sequence[UUID]) -> list[Organization | None]:
        found = await organizations_by_ids(pool, list(ids))
        return [found.get(org_id) for org_id in ids]

    return DataLoader(load_fn=load)
