from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.invitations import Invitation, invitations_by_orgs


def invitations_loader(pool: asyncpg.Pool) -> DataLoader[tuple[UUID, bool], list[Invitation]]:
    """Keyed by (org, include closed ones): one query per flag asked for."""

    async def load(keys: Sequence[tuple[UUID, bool]]) -> list[list[Invitation]]:
        found: dict[bool, dict[UUID, list[Invitation]]] = {}
        for include_closed in {closed for _, closed in keys}:
            org_ids = [org for org, closed in keys if closed is include_closed]
            found[include_closed] = await invitations_by_orgs(pool, org_ids, include_closed)
        return [found[closed][org] for org, closed in keys]

    return DataLoader(load_fn=load)
