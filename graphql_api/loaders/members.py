from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.directory.members import roles_of
from ledger.directory.roles import Role


def member_role_loader(pool: asyncpg.Pool) -> DataLoader[tuple[UUID, str], Role | None]:
    async def load(keys: Sequence[tuple[UUID, str]]) -> list[Role | None]:
        found = await roles_of(pool, keys)
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)
