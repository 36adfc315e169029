"""Balances read straight from the lots, for queries that want the committed truth."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.money import MicroCredits
from ledger.core.state import Balance

_BY_ORGS = """
SELECT org_id, coalesce(sum(remaining), 0)::bigint AS total
FROM credit_lots
WHERE org_id = ANY($1::uuid[])
  AND remaining > 0
  AND effective_at <= $2
  AND (expires_at IS NULL OR expires_at > $2)
GROUP BY org_id
"""


async def balances_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, org_ids: list[UUID], at: datetime
) -> dict[UUID, Balance]:
    rows = await connection.fetch(_BY_ORGS, org_ids, at)
    found = {row["org_id"]: Balance(MicroCredits(row["total"]), MicroCredits(0)) for row in rows}
    return {org: found.get(org, Balance(MicroCredits(0), MicroCredits(0))) for org in org_ids}
