from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.members import Member, members_by_orgs


def organization_members_loader(pool: asyncpg.Pool) -> DataLoader[UUID, list[Member]]:
    async def load(org_ids: Sequence[UUID]) -> list[list[Member]]:
        found = await members_by_orgs(pool, list(org_ids))
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)
