from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.core.money import MicroCredits
from ledger.core.state import SpendKey
from ledger.store.budgets import spent


def spend_loader(pool: asyncpg.Pool) -> DataLoader[tuple[UUID, SpendKey], MicroCredits]:
    """Spend counted under (organization, (scope, period start)): every budget and cap at once."""

    async def load(counters: Sequence[tuple[UUID, SpendKey]]) -> list[MicroCredits]:
        found = await spent(pool, counters)
        return [found[counter] for counter in counters]

    return DataLoader(load_fn=load)
