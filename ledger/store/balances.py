"""Balances read straight from the committed lots and holds, for queries that want the truth."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.money import MicroCredits
from ledger.core.state import Balance

_BY_ORGS = """
SELECT o.id AS org_id,
       coalesce((SELECT sum(remaining) FROM credit_lots l
                 WHERE l.org_id = o.id AND l.remaining > 0 AND l.effective_at <= $2
                   AND (l.expires_at IS NULL OR l.expires_at > $2)), 0)::bigint - o.credit_drawn AS total,
       coalesce((SELECT sum(reserved) FROM credit_holds h
                 WHERE h.org_id = o.id AND h.status = 'open' AND h.expires_at > $2), 0)::bigint AS held
FROM organizations o
WHERE o.id = ANY($1::uuid[])
"""


async def balances_by_orgs(
    connection: asyncpg.Connection | asyncpg.Pool, org_ids: list[UUID], at: datetime
) -> dict[UUID, Balance]:
    rows = await connection.fetch(_BY_ORGS, org_ids, at)
    found = {row["org_id"]: Balance(MicroCredits(row["total"]), MicroCredits(row["held"])) for row in rows}
    return {org: found.get(org, Balance(MicroCredits(0), MicroCredits(0))) for org in org_ids}
