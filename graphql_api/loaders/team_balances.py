from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.core.state import Balance
from ledger.store.budgets import team_balances


def team_balance_loader(pool: asyncpg.Pool) -> DataLoader[tuple[UUID, UUID], Balance]:
    """What each (organization, team) holds now: every team of a list in one query."""

    async def load(teams: Sequence[tuple[UUID, UUID]]) -> list[Balance]:
        found = await team_balances(pool, teams, datetime.now(UTC))
        return [found[team] for team in teams]

    return DataLoader(load_fn=load)
