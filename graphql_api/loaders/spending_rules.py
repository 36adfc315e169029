from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from ledger.core.state import OrgState
from ledger.store.budgets import spending_rules


def spending_rules_loader(pool: asyncpg.Pool) -> DataLoader[UUID, OrgState]:
    """An organization's rules and credit line (an OrgState without lots), read once per request
    for its budgets, caps and consumption policy."""

    async def load(org_ids: Sequence[UUID]) -> list[OrgState]:
        found = await spending_rules(pool, org_ids)
        # Only an organization that exists is ever asked about (its fields are reached through it).
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)
