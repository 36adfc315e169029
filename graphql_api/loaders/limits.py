from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.members import Limits, limits_by_orgs


def limits_loader(pool: asyncpg.Pool) -> DataLoader[UUID, Limits]:
    async def load(org_ids: Sequence[UUID]) -> list[Limits]:
        found = await limits_by_orgs(pool, list(org_ids))
        # Only an organization that exists is ever asked about (its fields are reached through it).
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)
