"""The ledger worker's reads and writes: org states in, one batch of outcomes out.

A batch is written with one statement per table (arrays unnested server-side), inside the caller's
transaction, so a thousand commands cost a handful of round trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from uuid import UUID

import asyncpg

from ledger.core.apply import result_from_dict, result_to_dict
from ledger.core.batch import IdempotencyKey, Outcome, Stored
from ledger.core.commands import LotKind, payload_to_dict
from ledger.core.money import MicroCredits
from ledger.core.state import Lot, OrgState

_LOTS = """
SELECT org_id, id, kind, amount, remaining, priority, effective_at, expires_at, created_at
FROM credit_lots
WHERE org_id = ANY($1::uuid[]) AND remaining > 0
"""

_STORED = """
SELECT t.org_id, t.idempotency_key, t.id, t.fingerprint, t.result
FROM ledger_transactions t
JOIN unnest($1::uuid[], $2::text[]) AS k (org_id, idempotency_key)
  ON t.org_id = k.org_id AND t.idempotency_key = k.idempotency_key
"""

_INSERT_TRANSACTIONS = """
INSERT INTO ledger_transactions
    (org_id, id, idempotency_key, fingerprint, command_type, payload, status, result, balance_after, received_at)
SELECT org_id, id, idempotency_key, fingerprint, command_type, payload::jsonb, status, result::jsonb,
       balance_after, received_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::timestamptz[])
    AS t (org_id, id, idempotency_key, fingerprint, command_type, payload, status, result, balance_after,
          received_at)
"""

_INSERT_LOTS = """
INSERT INTO credit_lots
    (org_id, id, transaction_id, kind, amount, remaining, priority, effective_at, expires_at, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[],
                     $7::integer[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
"""

_INSERT_POSTINGS = """
INSERT INTO ledger_postings (org_id, transaction_id, leg, account, lot_id, amount)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::smallint[], $4::text[], $5::uuid[], $6::bigint[])
"""

_UPDATE_LOTS = """
UPDATE credit_lots AS l SET remaining = u.remaining
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u (org_id, id, remaining)
WHERE l.org_id = u.org_id AND l.id = u.id
"""


async def load_states(connection: asyncpg.Connection, org_ids: Sequence[UUID]) -> dict[UUID, OrgState]:
    lots: dict[UUID, list[Lot]] = {org: [] for org in org_ids}
    for row in await connection.fetch(_LOTS, list(org_ids)):
        lots[row["org_id"]].append(
            Lot(
                id=row["id"],
                kind=LotKind(row["kind"]),
                amount=MicroCredits(row["amount"]),
                remaining=MicroCredits(row["remaining"]),
                priority=row["priority"],
                effective_at=row["effective_at"],
                expires_at=row["expires_at"],
                created_at=row["created_at"],
            )
        )
    return {org: OrgState(org, tuple(org_lots)) for org, org_lots in lots.items()}


async def load_stored(connection: asyncpg.Connection, keys: Iterable[IdempotencyKey]) -> dict[IdempotencyKey, Stored]:
    unique = sorted(set(keys))
    rows = await connection.fetch(_STORED, [org for org, _ in unique], [key for _, key in unique])
    return {
        (row["org_id"], row["idempotency_key"]): Stored(row["id"], row["fingerprint"], result_from_dict(row["result"]))
        for row in rows
    }


async def write_outcomes(
    connection: asyncpg.Connection, outcomes: Sequence[Outcome], final_states: dict[UUID, OrgState]
) -> None:
    """Journal every new outcome of a batch; lots are written as the batch left them."""
    new = [outcome for outcome in outcomes if outcome.applied is not None]
    if not new:
        return
    await _insert_transactions(connection, new)
    created: dict[tuple[UUID, UUID], UUID] = {}
    touched: set[tuple[UUID, UUID]] = set()
    for outcome in new:
        assert outcome.applied is not None
        org = outcome.command.organization_id
        created.update({(org, lot.id): outcome.transaction_id for lot in outcome.applied.new_lots})
        touched.update((org, lot.id) for lot in outcome.applied.touched_lots)
    final = {(org, lot.id): lot for org, state in final_states.items() for lot in state.lots}
    await _insert_lots(connection, created, final)
    await _insert_postings(connection, new)
    existing = sorted(touched - created.keys())
    await _update_lots(connection, [(org, lot_id, final[(org, lot_id)].remaining) for org, lot_id in existing])


async def _insert_transactions(connection: asyncpg.Connection, new: Sequence[Outcome]) -> None:
    columns: list[list[object]] = [[] for _ in range(10)]
    for outcome in new:
        envelope = outcome.command.envelope
        row = (
            envelope.organization_id,
            outcome.transaction_id,
            envelope.idempotency_key,
            outcome.fingerprint,
            outcome.command.payload.type,
            json.dumps(payload_to_dict(outcome.command.payload)),
            outcome.result.status.value,
            json.dumps(result_to_dict(outcome.result)),
            outcome.result.balance_after,
            envelope.received_at,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await connection.execute(_INSERT_TRANSACTIONS, *columns)


async def _insert_lots(
    connection: asyncpg.Connection, created: dict[tuple[UUID, UUID], UUID], final: dict[tuple[UUID, UUID], Lot]
) -> None:
    if not created:
        return
    columns: list[list[object]] = [[] for _ in range(10)]
    for (org, lot_id), transaction_id in created.items():
        lot = final[(org, lot_id)]
        row = (
            org, lot.id, transaction_id, lot.kind.value, lot.amount, lot.remaining, lot.priority,
            lot.effective_at, lot.expires_at, lot.created_at,
        )  # fmt: skip
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await connection.execute(_INSERT_LOTS, *columns)


async def _insert_postings(connection: asyncpg.Connection, new: Sequence[Outcome]) -> None:
    columns: list[list[object]] = [[] for _ in range(6)]
    for outcome in new:
        assert outcome.applied is not None
        org = outcome.command.organization_id
        for leg, posting in enumerate(outcome.applied.postings):
            row = (org, outcome.transaction_id, leg, posting.account, posting.lot_id, posting.amount)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
    if columns[0]:
        await connection.execute(_INSERT_POSTINGS, *columns)


async def _update_lots(connection: asyncpg.Connection, rows: list[tuple[UUID, UUID, int]]) -> None:
    if rows:
        org_ids, lot_ids, remaining = zip(*rows, strict=True)
        await connection.execute(_UPDATE_LOTS, list(org_ids), list(lot_ids), list(remaining))
