"""An organization's journal read back for the API: its transactions newest first, a page at a time
by keyset, and the postings of many transactions in one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger.core.charge import UNPRICED_PRODUCT
from ledger.core.entries import Result, Status
from ledger.core.money import MicroCredits
from ledger.store.journal import stored_result


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
            result=stored_result(row["status"], row["balance_after"], row["result"]),
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


@dataclass(frozen=True, slots=True)
class UsageDebit:
    """An accepted debit as the journal holds it: a usage event, or a hold's capture that charged
    something (its product, team and user are the hold's; by amount, it has no quantity)."""

    key: HistoryKey
    product: str
    credits: MicroCredits
    occurred_at: datetime
    quantity: Decimal | None
    team_id: UUID | None
    user_id: str | None
    hold_id: UUID | None
    dimensions: dict[str, str]


# Oldest first from a key on: the same index as the history, read the other way.
_DEBITS_AFTER = """
SELECT t.committed_at, t.received_at, t.id,
       coalesce(t.payload->>'product', h.product, $4) AS product,
       (t.result->>'credits_charged')::bigint AS credits,
       coalesce((t.payload->>'occurred_at')::timestamptz, t.received_at) AS occurred_at,
       (t.payload->>'quantity')::numeric AS quantity,
       coalesce(t.payload->>'team_id', h.team_id::text) AS team_id,
       coalesce(t.payload->>'user_id', h.user_id) AS user_id,
       h.id AS hold_id,
       t.payload->'dimensions' AS dimensions
FROM ledger_transactions t
LEFT JOIN credit_holds h
    ON t.command_type = 'capture_hold' AND h.org_id = t.org_id AND h.id = (t.payload->>'hold_id')::uuid
WHERE t.org_id = $1 AND (t.committed_at, t.received_at, t.id) > ($2, $3, $5)
  AND t.status = 'accepted' AND t.command_type IN ('record_usage', 'capture_hold')
  AND (t.command_type = 'record_usage' OR (t.result->>'credits_charged')::bigint <> 0)
ORDER BY t.committed_at, t.received_at, t.id
LIMIT $6
"""
_LATEST = """
SELECT committed_at, received_at, id FROM ledger_transactions WHERE org_id = $1
ORDER BY committed_at DESC, received_at DESC, id DESC LIMIT 1
"""
# Before any transaction: a key every real one follows.
_NO_KEY = HistoryKey(datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), UUID(int=0))


async def latest_key(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID) -> HistoryKey:
    """Where the organization's journal ends now (before anything, for an empty one)."""
    row = await connection.fetchrow(_LATEST, org_id)
    return _NO_KEY if row is None else HistoryKey(row["committed_at"], row["received_at"], row["id"])


async def debits_after(
    connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID, after: HistoryKey, limit: int
) -> list[UsageDebit]:
    """Up to `limit` accepted debits journaled after `after`, oldest first.

    A reader that pages on with the last key it got misses none: an organization's batches are
    written one after the other by its one actor, each starting after the one before committed, so
    committed_at (the transaction's start) only grows per organization."""
    rows = await connection.fetch(
        _DEBITS_AFTER, org_id, after.committed_at, after.received_at, UNPRICED_PRODUCT, after.id, limit
    )
    return [
        UsageDebit(
            key=HistoryKey(row["committed_at"], row["received_at"], row["id"]),
            product=row["product"],
            credits=MicroCredits(row["credits"]),
            occurred_at=row["occurred_at"],
            quantity=row["quantity"],
            team_id=None if row["team_id"] is None else UUID(row["team_id"]),
            user_id=row["user_id"],
            hold_id=row["hold_id"],
            dimensions=dict(row["dimensions"] or {}),
        )
        for row in rows
    ]
