from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.teams import Team, teams_by_orgs


def teams_loader(pool: asyncpg.Pool) -> DataLoader[UUID, list[Team]]:
    """Each organization's teams, oldest first."""

    async def load(org_ids: Sequence[UUID]) -> list[list[Team]]:
        found = await teams_by_orgs(pool, list(org_ids))
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)
