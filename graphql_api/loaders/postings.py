from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.store.history import PostingView, postings_of


def postings_loader(pool: asyncpg.Pool) -> DataLoader[tuple[UUID, UUID], list[PostingView]]:
    """The legs of (organization, transaction): a page of history loads all its postings at once."""

    async def load(keys: Sequence[tuple[UUID, UUID]]) -> list[list[PostingView]]:
        found = await postings_of(pool, keys)
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
