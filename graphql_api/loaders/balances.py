from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.core.state import Balance
from ledger.store.balances import balances_by_orgs


def balance_loader(pool: asyncpg.Pool) -> DataLoader[UUID, Balance]:
    async def load(org_ids: Sequence[UUID]) -> list[Balance]:
        found = await balances_by_orgs(pool, list(org_ids), datetime.now(UTC))
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)
