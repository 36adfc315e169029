"""Which organizations hold lots or holds whose expiry is due (read by the expiry job)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

_DUE = """
SELECT org_id FROM credit_lots WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1
UNION
SELECT org_id FROM credit_holds WHERE status = 'open' AND expires_at <= $1
LIMIT $2
"""


async def organizations_with_expired(pool: asyncpg.Pool, as_of: datetime, limit: int) -> list[UUID]:
    return [row["org_id"] for row in await pool.fetch(_DUE, as_of, limit)]
