"""Reads of credit lots and holds for the API: what an organization holds, lot by lot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.commands import LotKind
from ledger.core.money import MicroCredits


@dataclass(frozen=True, slots=True)
class LotView:
    id: UUID
    kind: LotKind
    amount: MicroCredits
    remaining: MicroCredits
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    team_id: UUID | None
    products: list[str] | None
    refundable: bool
    source: str
    parent_id: UUID | None


@dataclass(frozen=True, slots=True)
class HoldView:
    id: UUID
    amount: MicroCredits
    reserved: MicroCredits
    captured: MicroCredits
    status: str
    expires_at: datetime
    product: str | None
    team_id: UUID | None
    user_id: str | None
    run_id: str | None


# Lots usable now first, in consumption order; spent or ended lots only when asked for.
_LOTS = """
SELECT id, kind, amount, remaining, priority, effective_at, expires_at, team_id, products, refundable, source,
       parent_id
FROM credit_lots
WHERE org_id = $1 AND ($2 OR (remaining > 0 AND (expires_at IS NULL OR expires_at > now())))
ORDER BY priority, expires_at NULLS LAST, created_at, id
"""
_HOLDS = """
SELECT id, amount, reserved, captured, status, expires_at, product, team_id, user_id, run_id
FROM credit_holds
WHERE org_id = $1 AND ($2 OR (status = 'open' AND expires_at > now()))
ORDER BY expires_at, id
"""


async def lots_of(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, include_spent: bool) -> list[LotView]:
    rows = await connection.fetch(_LOTS, org_id, include_spent)
    return [LotView(**dict(row) | {"kind": LotKind(row["kind"])}) for row in rows]


async def holds_of(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, include_closed: bool) -> list[HoldView]:
    return [HoldView(**dict(row)) for row in await connection.fetch(_HOLDS, org_id, include_closed)]
