"""An organization's journal read back for the API: its transactions newest first, a page at a time
by keyset, and the postings of many transactions in one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.entries import Result, Status, result_from_dict
from ledger.core.money import MicroCredits


@dataclass(frozen=True, slots=True)
class HistoryKey:
    """Where a transaction sits in its organization's history: a batch's transactions share
    committed_at (one PostgreSQL transaction), so received_at and then id order them within it."""

    committed_at: datetime
    received_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class TransactionView:
    id: UUID
    command_type: str
    status: Status
    idempotency_key: str
    committed_at: datetime
    received_at: datetime
    balance_after: MicroCredits
    result: Result

    @property
    def key(self) -> HistoryKey:
        return HistoryKey(self.committed_at, self.received_at, self.id)


@dataclass(frozen=True, slots=True)
class PostingView:
    leg: int
    account: str
    lot_id: UUID | None
    hold_id: UUID | None
    amount: MicroCredits


# Optional bounds become infinite ones, so the one statement always has index conditions on
# ledger_transactions_history (a generic plan cannot use "$n IS NULL OR ..." for the scan).
_PAGE = """
SELECT id, command_type, status, idempotency_key, committed_at, received_at, balance_after, result
FROM ledger_transactions
WHERE org_id = $1
  AND committed_at >= coalesce($2::timestamptz, '-infinity')
  AND committed_at < coalesce($3::timestamptz, 'infinity')
  AND (committed_at, received_at, id) < (coalesce($4::timestamptz, 'infinity'), coalesce($5::timestamptz, 'infinity'),
                                         coalesce($6::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
  AND ($7::text[] IS NULL OR command_type = ANY($7::text[]))
ORDER BY committed_at DESC, received_at DESC, id DESC
LIMIT $8
"""
_POSTINGS = """
SELECT p.org_id, p.transaction_id, p.leg, p.account, p.lot_id, p.hold_id, p.amount
FROM unnest($1::uuid[], $2::uuid[]) AS k (org_id, transaction_id)
JOIN ledger_postings p ON p.org_id = k.org_id AND p.transaction_id = k.transaction_id
ORDER BY p.org_id, p.transaction_id, p.leg
"""


async def transactions_page(
    connection: asyncpg.Connection | asyncpg.Pool,
    org_id: UUID,
    *,
    before: HistoryKey | None,
    limit: int,
    command_types: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[TransactionView]:
    """Up to `limit` transactions committed in [since, until), newest first, after (older than) `before`."""
    rows = await connection.fetch(
        _PAGE,
        org_id,
        since,
        until,
        None if before is None else before.committed_at,
        None if before is None else before.received_at,
        None if before is None else before.id,
        None if command_types is None else list(command_types),
        limit,
    )
    return [
        TransactionView(
            id=row["id"],
            command_type=row["command_type"],
            status=Status(row["status"]),
            idempotency_key=row["idempotency_key"],
            committed_at=row["committed_at"],
            received_at=row["received_at"],
            balance_after=MicroCredits(row["balance_after"]),
            result=result_from_dict(row["result"]),
        )
        for row in rows
    ]


async def postings_of(
    connection: asyncpg.Connection | asyncpg.Pool, transactions: Sequence[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], list[PostingView]]:
    """The legs of each (organization, transaction), in leg order; a rejected command has none."""
    found: dict[tuple[UUID, UUID], list[PostingView]] = {key: [] for key in transactions}
    rows = await connection.fetch(_POSTINGS, [org for org, _ in transactions], [tx for _, tx in transactions])
    for row in rows:
        posting = PostingView(row["leg"], row["account"], row["lot_id"], row["hold_id"], MicroCredits(row["amount"]))
        found[(row["org_id"], row["transaction_id"])].append(posting)
    return found
