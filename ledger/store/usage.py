"""Usage read back from the journal, summed per time bucket and per group, for reports.

A usage event is an accepted `record_usage`, or a `capture_hold` that charged something (a final
capture of nothing only releases). A capture's product, team and user are its hold's; a capture by
amount has no quantity. A debit that was credited back is left out whole, in whichever period the
credit-back came: it reverses the very charge (as the spend counters of budgets and caps do), so
what a report shows is what the organization was finally charged for.

Events are bucketed by committed_at, in UTC: the time the journal holds them, so the report adds up
to the journal over any range (an event sent late with an earlier occurredAt counts when it was
journaled), and the range is an index scan on ledger_transactions_history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import asyncpg

from ledger.core.charge import UNPRICED_PRODUCT
from ledger.core.money import MicroCredits


class BucketSize(StrEnum):
    """date_trunc's names for the buckets a report may use."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class GroupKey(StrEnum):
    """What may split a bucket besides time."""

    PRODUCT = "product"
    MODEL = "model"  # the event's "model" dimension
    TEAM = "team"  # a capture's: its hold's
    USER = "user"


@dataclass(frozen=True, slots=True)
class Grouping:
    """Which keys split a bucket; a key not grouped by is None in every row."""

    product: bool = True
    model: bool = False
    team: bool = False
    user: bool = False

    @classmethod
    def of(cls, keys: Iterable[GroupKey]) -> Grouping:
        chosen = set(keys)
        return cls(
            product=GroupKey.PRODUCT in chosen,
            model=GroupKey.MODEL in chosen,
            team=GroupKey.TEAM in chosen,
            user=GroupKey.USER in chosen,
        )


@dataclass(frozen=True, slots=True)
class UsageRow:
    start: datetime
    product: str | None
    model: str | None
    team_id: UUID | None
    user_id: str | None
    quantity: Decimal
    credits: MicroCredits
    events: int


_USAGE = """
WITH events AS (
    SELECT date_trunc($4, t.committed_at, 'UTC') AS start,
           coalesce(t.payload->>'product', h.product, $9) AS product,
           t.payload->'dimensions'->>'model' AS model,
           coalesce(t.payload->>'team_id', h.team_id::text) AS team_id,
           coalesce(t.payload->>'user_id', h.user_id) AS user_id,
           (t.payload->>'quantity')::numeric AS quantity,
           (t.result->>'credits_charged')::bigint AS credits
    FROM ledger_transactions t
    LEFT JOIN credit_holds h
        ON t.command_type = 'capture_hold' AND h.org_id = t.org_id AND h.id = (t.payload->>'hold_id')::uuid
    WHERE t.org_id = $1 AND t.committed_at >= $2 AND t.committed_at < $3
      AND t.status = 'accepted' AND t.command_type IN ('record_usage', 'capture_hold')
      AND (t.command_type = 'record_usage' OR (t.result->>'credits_charged')::bigint <> 0)
      AND NOT EXISTS (SELECT 1 FROM ledger_transactions c
                      WHERE c.org_id = t.org_id AND c.command_type = 'credit_back' AND c.status = 'accepted'
                        AND c.payload->>'transaction_id' = t.id::text)
)
SELECT start,
       CASE WHEN $5 THEN product END AS product,
       CASE WHEN $6 THEN model END AS model,
       CASE WHEN $7 THEN team_id END AS team_id,
       CASE WHEN $8 THEN user_id END AS user_id,
       coalesce(sum(quantity), 0) AS quantity,
       sum(credits)::bigint AS credits,
       count(*) AS events
FROM events
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST, 4 NULLS FIRST, 5 NULLS FIRST
LIMIT $10
"""


async def usage_rows(
    connection: asyncpg.Connection | asyncpg.Pool,
    org_id: UUID,
    start: datetime,
    end: datetime,
    bucket: BucketSize,
    grouping: Grouping,
    limit: int,
) -> list[UsageRow]:
    """Usage journaled in [start, end), one row per bucket and group, oldest first; at most `limit`."""
    rows = await connection.fetch(
        _USAGE, org_id, start, end, bucket.value,
        grouping.product, grouping.model, grouping.team, grouping.user, UNPRICED_PRODUCT, limit,
    )  # fmt: skip
    return [
        UsageRow(
            start=row["start"],
            product=row["product"],
            model=row["model"],
            team_id=None if row["team_id"] is None else UUID(row["team_id"]),
            user_id=row["user_id"],
            quantity=row["quantity"],
            credits=MicroCredits(row["credits"]),
            events=row["events"],
        )
        for row in rows
    ]
