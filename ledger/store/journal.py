"""The ledger worker's journal: which idempotency keys are taken, and one batch of outcomes out.

A batch is written inside the caller's transaction, after the check of the worker's fencing
tokens. A usage-shaped batch (no new lot, no hold changed: nearly every batch) is one call of
`ledger_journal_batch` (migration 020: the fence check, its transactions, its lots' remaining and
its postings, arrays unnested server-side), so a batch of one command costs one round trip, not
six. Any other batch is written with one statement per table (binary COPY for transactions and
postings), in the order their references need. Either way a thousand commands cost a handful of
round trips. (Binary COPY spares asyncpg its checks of each array element, but measured on a
thousand-command batch it is no cheaper than the one statement, both processes counted.)
"""
# long: a batch's statements, each beside the one function that runs it, in reference order

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from ledger.core import codec
from ledger.core.batch import IdempotencyKey, Outcome, Stored
from ledger.core.entries import Result, Status
from ledger.core.money import MicroCredits
from ledger.core.state import Lot, OrgState
from ledger.store import fences
from ledger.store.fences import FencedOut
from ledger.store.pool import JsonText
from ledger.store.settings import settings_rows

_JSON = msgspec.json.Encoder()

_STORED = """
SELECT t.org_id, t.idempotency_key, t.id, t.fingerprint, t.status, t.balance_after, t.result
FROM ledger_transactions t
JOIN unnest($1::uuid[], $2::text[]) AS k (org_id, idempotency_key)
  ON t.org_id = k.org_id AND t.idempotency_key = k.idempotency_key
"""

# The two tables every command writes go in by binary COPY, the cheapest way into PostgreSQL.
_TRANSACTION_COLUMNS = (
    "org_id", "id", "idempotency_key", "fingerprint", "command_type", "payload", "status", "result",
    "balance_after", "received_at",
)  # fmt: skip
_POSTING_COLUMNS = ("org_id", "transaction_id", "leg", "account", "lot_id", "hold_id", "amount")

# A lot's product list and rollover rule travel as JSON text: unnest cannot take arrays of arrays.
_INSERT_LOTS = """
INSERT INTO credit_lots
    (org_id, id, transaction_id, kind, amount, remaining, priority, effective_at, expires_at, created_at,
     team_id, products, rollover, source, refundable, revenue_treatment, price_per_credit, currency, parent_id)
SELECT org_id, id, transaction_id, kind, amount, remaining, priority, effective_at, expires_at, created_at,
       team_id, (SELECT array_agg(p) FROM jsonb_array_elements_text(products::jsonb) AS p), rollover::jsonb,
       source, refundable, revenue_treatment, price_per_credit, currency, parent_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[], $7::integer[],
            $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::uuid[], $12::text[], $13::text[],
            $14::text[], $15::boolean[], $16::text[], $17::numeric[], $18::text[], $19::uuid[])
    AS t (org_id, id, transaction_id, kind, amount, remaining, priority, effective_at, expires_at, created_at,
          team_id, products, rollover, source, refundable, revenue_treatment, price_per_credit, currency, parent_id)
"""


_UPSERT_HOLDS = """
INSERT INTO credit_holds
    (org_id, id, transaction_id, amount, reserved, captured, cap, status, product, team_id, user_id, run_id,
     expires_at, placed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                     $8::text[], $9::text[], $10::uuid[], $11::text[], $12::text[], $13::timestamptz[],
                     $14::timestamptz[])
ON CONFLICT (org_id, id) DO UPDATE
    SET reserved = excluded.reserved, captured = excluded.captured, status = excluded.status
"""

_UPSERT_QUOTES = """
INSERT INTO credit_quotes
    (org_id, id, transaction_id, product, quantity, credits_per_unit, amount, expires_at, team_id, user_id, used_by)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::numeric[], $6::numeric[], $7::bigint[],
                     $8::timestamptz[], $9::uuid[], $10::text[], $11::uuid[])
ON CONFLICT (org_id, id) DO UPDATE SET used_by = excluded.used_by
"""

_UPSERT_SETTINGS = """
INSERT INTO ledger_settings (org_id, kind, key, value)
SELECT org_id, kind, key, value::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
    AS t (org_id, kind, key, value)
ON CONFLICT (org_id, kind, key) DO UPDATE SET value = excluded.value, updated_at = now()
"""

_DELETE_SETTINGS = """
DELETE FROM ledger_settings s USING unnest($1::uuid[], $2::text[], $3::text[]) AS d (org_id, kind, key)
WHERE s.org_id = d.org_id AND s.kind = d.kind AND s.key = d.key
"""

_UPSERT_COUNTERS = """
INSERT INTO spend_counters (org_id, scope, period_start, spent)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (org_id, scope, period_start) DO UPDATE SET spent = excluded.spent
"""

_INSERT_ALERT_EVENTS = """
INSERT INTO alert_events
    (org_id, id, alert_id, transaction_id, state, kind, name, threshold, value, team_id, user_id, at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                     $8::bigint[], $9::bigint[], $10::uuid[], $11::text[], $12::timestamptz[])
"""

_UPDATE_DRAWN = """
UPDATE organizations o SET credit_drawn = d.drawn
FROM unnest($1::uuid[], $2::bigint[]) AS d (id, drawn) WHERE o.id = d.id
"""

_JOURNAL_BATCH = """
SELECT ledger_journal_batch($1::integer[], $2::bigint[],
    $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],
    $12::timestamptz[], $13::uuid[], $14::uuid[], $15::bigint[],
    $16::uuid[], $17::uuid[], $18::smallint[], $19::text[], $20::uuid[], $21::uuid[], $22::bigint[])
"""

_UPDATE_LOTS = """
UPDATE credit_lots AS l SET remaining = u.remaining
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u (org_id, id, remaining)
WHERE l.org_id = u.org_id AND l.id = u.id
"""


async def load_stored(connection: asyncpg.Connection, keys: Iterable[IdempotencyKey]) -> dict[IdempotencyKey, Stored]:
    unique = list(set(keys))  # no order needed: a read, and sorting compares UUIDs in Python
    rows = await connection.fetch(_STORED, [org for org, _ in unique], [key for _, key in unique])
    return {
        (row["org_id"], row["idempotency_key"]): Stored(
            row["id"], row["fingerprint"], stored_result(row["status"], row["balance_after"], row["result"])
        )
        for row in rows
    }


def one_statement(
    outcomes: Sequence[Outcome], initial_states: Mapping[UUID, OrgState], final_states: Mapping[UUID, OrgState]
) -> bool:
    """Whether `write_outcomes` writes this batch by one statement, atomic by itself: no new lot or
    alert event, no state whose holds, quotes, counters, credit line or rules changed."""
    for outcome in outcomes:
        if outcome.applied is not None and (outcome.applied.new_lots or outcome.applied.alert_events):
            return False
    for org, after in final_states.items():
        before = initial_states[org]
        if after is before:
            continue
        if (
            before.holds is not after.holds
            or before.quotes is not after.quotes
            or before.spend is not after.spend
            or before.credit_drawn != after.credit_drawn
            or _rules_changed(before, after)
        ):
            return False
    return True


async def write_outcomes(
    connection: asyncpg.Connection,
    outcomes: Sequence[Outcome],
    initial_states: Mapping[UUID, OrgState],
    final_states: Mapping[UUID, OrgState],
    tokens: Mapping[int, int],
) -> None:
    """Check that this worker still holds `tokens` (else FencedOut, nothing written), then journal
    every new outcome of a batch; lots, holds, quotes, rules and counters are written as the batch
    left them (what differs from the states it started from)."""
    new = [outcome for outcome in outcomes if outcome.applied is not None]
    if not new:
        await fences.check(connection, tokens)
        return
    created: dict[tuple[UUID, UUID], UUID] = {}
    touched: set[tuple[UUID, UUID]] = set()
    for outcome in new:
        assert outcome.applied is not None
        org = outcome.command.organization_id
        created.update({(org, lot.id): outcome.transaction_id for lot in outcome.applied.new_lots})
        touched.update((org, lot.id) for lot in outcome.applied.touched_lots)
    final = {(org, lot.id): lot for org, state in final_states.items() for lot in state.lots}
    existing = sorted(touched - created.keys())
    remaining: list[tuple[UUID, UUID, int]] = [
        (org, lot_id, final[(org, lot_id)].remaining) for org, lot_id in existing
    ]
    changed = [(initial_states[org], state) for org, state in final_states.items() if state is not initial_states[org]]
    holds = _hold_rows(changed)
    if created or holds:
        # Postings may name the new lots and holds: those go in first.
        await fences.check(connection, tokens)
        await _insert_transactions(connection, new)
        await _insert_lots(connection, created, final)
        await _update_lots(connection, remaining)
        if holds:
            await connection.execute(_UPSERT_HOLDS, *_columns(holds, 14))
        await _insert_postings(connection, new)
    else:
        await _journal_batch(connection, tokens, new, remaining)
    await _write_quotes(connection, changed)
    await _write_settings(connection, changed)
    await _write_counters(connection, changed)
    await _insert_alert_events(connection, new)
    drawn = [(after.organization_id, after.credit_drawn) for before, after in changed
             if before.credit_drawn != after.credit_drawn]  # fmt: skip
    if drawn:
        await connection.execute(_UPDATE_DRAWN, *_columns(drawn, 2))


async def _journal_batch(
    connection: asyncpg.Connection,
    tokens: Mapping[int, int],
    new: Sequence[Outcome],
    remaining: list[tuple[UUID, UUID, int]],
) -> None:
    """The fence check, the transactions, the lots' remaining and the postings: one statement."""
    partitions = sorted(tokens)
    fenced = await connection.fetchval(
        _JOURNAL_BATCH,
        partitions,
        [tokens[p] for p in partitions],
        *_columns(_transaction_rows(new), 10),
        *_columns(remaining, 3),
        *_columns(_posting_rows(new), 7),
    )
    if fenced:
        raise FencedOut(frozenset(fenced))


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """Rows turned into the columns unnest takes (transposed by zip, in C: a batch has thousands)."""
    if not rows:
        return [[] for _ in range(width)]
    columns = [list(column) for column in zip(*rows, strict=True)]
    assert len(columns) == width, f"rows of {len(columns)} values, not {width}"
    return columns


def _hold_rows(changed: Sequence[tuple[OrgState, OrgState]]) -> list[tuple[object, ...]]:
    return [
        (after.organization_id, h.id, h.transaction_id, h.amount, h.reserved, h.captured, h.cap, h.status.value,
         h.product, h.team_id, h.user_id, h.run_id, h.expires_at, h.placed_at)
        for before, after in changed
        if before.holds is not after.holds  # most batches only spend: the very same mapping
        for h in after.holds.values()
        if before.holds.get(h.id) != h
    ]  # fmt: skip


async def _write_quotes(connection: asyncpg.Connection, changed: Sequence[tuple[OrgState, OrgState]]) -> None:
    rows = [
        (after.organization_id, q.id, q.transaction_id, q.product, q.quantity, q.credits_per_unit, q.amount,
         q.expires_at, q.team_id, q.user_id, q.used_by)
        for before, after in changed
        if before.quotes is not after.quotes
        for q in after.quotes.values()
        if before.quotes.get(q.id) != q
    ]  # fmt: skip
    if rows:
        await connection.execute(_UPSERT_QUOTES, *_columns(rows, 11))


async def _write_settings(connection: asyncpg.Connection, changed: Sequence[tuple[OrgState, OrgState]]) -> None:
    upserts: list[tuple[object, ...]] = []
    deletes: list[tuple[object, ...]] = []
    for before, after in changed:
        if not _rules_changed(before, after):
            continue  # most batches only spend: their rule mappings are the very same objects
        old, new = settings_rows(before), settings_rows(after)
        org = after.organization_id
        upserts += [
            (org, kind, key, json.dumps(value)) for (kind, key), value in new.items() if old.get((kind, key)) != value
        ]
        deletes += [(org, kind, key) for kind, key in old.keys() - new.keys()]
    if deletes:
        await connection.execute(_DELETE_SETTINGS, *_columns(deletes, 3))
    if upserts:
        await connection.execute(_UPSERT_SETTINGS, *_columns(upserts, 4))


def _rules_changed(before: OrgState, after: OrgState) -> bool:
    return any(getattr(before, name) is not getattr(after, name) for name in _RULE_FIELDS)


_RULE_FIELDS = ("policies", "budgets", "members", "rates", "kind_priorities", "alerts", "access", "storage_used_gb")


async def _write_counters(connection: asyncpg.Connection, changed: Sequence[tuple[OrgState, OrgState]]) -> None:
    rows = [
        (after.organization_id, scope, start, spent)
        for before, after in changed
        if before.spend is not after.spend
        for (scope, start), spent in after.spend.items()
        if before.spend.get((scope, start)) != spent
    ]
    if rows:
        await connection.execute(_UPSERT_COUNTERS, *_columns(rows, 4))


async def _insert_alert_events(connection: asyncpg.Connection, new: Sequence[Outcome]) -> None:
    rows = [
        (outcome.command.organization_id, e.id, e.alert_id, e.transaction_id, e.state.value, e.kind.value,
         e.name, e.threshold, e.value, e.team_id, e.user_id, e.at)
        for outcome in new
        if outcome.applied is not None
        for e in outcome.applied.alert_events
    ]  # fmt: skip
    if rows:
        await connection.execute(_INSERT_ALERT_EVENTS, *_columns(rows, 12))


def _transaction_rows(new: Sequence[Outcome]) -> list[tuple[object, ...]]:
    """The journal's rows, payload and result as JSON text (jsonb's text form, for COPY and arrays alike)."""
    return [
        (
            outcome.command.organization_id,
            outcome.transaction_id,
            outcome.command.idempotency_key,
            outcome.fingerprint,
            outcome.command.payload.type,
            JsonText(outcome.payload_json),
            outcome.result.status.value,
            JsonText(_result_json(outcome.result)),
            outcome.result.balance_after,
            outcome.command.envelope.received_at,
        )
        for outcome in new
    ]


def _result_json(result: Result) -> str:
    """The result as JSON, with status and balance_after although the row's columns hold them too:
    the release before migration 020 reads a result from this JSON alone (`result_from_dict`), so
    during a rolling deploy, or after a rollback, it must find them here. A rejection's code and
    message only when set (that reader defaults them to null)."""
    data: dict[str, object] = {
        "status": result.status.value,
        "credits_charged": result.credits_charged,
        "balance_after": result.balance_after,
        "details": dict(result.details),
    }
    if result.code is not None:
        data["code"] = result.code
    if result.message is not None:
        data["message"] = result.message
    return _JSON.encode(data).decode()


def stored_result(status: str, balance_after: int, data: Mapping[str, Any]) -> Result:
    """A journaled result from its row: the columns, and the `result` JSON for the rest (rows of
    every release hold at least that)."""
    return Result(
        Status(status),
        credits_charged=MicroCredits(data.get("credits_charged", 0)),
        balance_after=MicroCredits(balance_after),
        code=data.get("code"),
        message=data.get("message"),
        details=data.get("details") or {},
    )


async def _insert_transactions(connection: asyncpg.Connection, new: Sequence[Outcome]) -> None:
    records = _transaction_rows(new)
    await connection.copy_records_to_table("ledger_transactions", records=records, columns=_TRANSACTION_COLUMNS)


async def _insert_lots(
    connection: asyncpg.Connection, created: dict[tuple[UUID, UUID], UUID], final: dict[tuple[UUID, UUID], Lot]
) -> None:
    if not created:
        return
    columns: list[list[object]] = [[] for _ in range(19)]
    for (org, lot_id), transaction_id in created.items():
        lot = final[(org, lot_id)]
        row = (
            org, lot.id, transaction_id, lot.kind.value, lot.amount, lot.remaining, lot.priority,
            lot.effective_at, lot.expires_at, lot.created_at, lot.team_id,
            None if lot.products is None else json.dumps(sorted(lot.products)),
            None if lot.rollover is None else json.dumps(codec.to_json(lot.rollover)),
            lot.terms.source.value, lot.terms.refundable, lot.terms.revenue_treatment.value,
            lot.terms.price_per_credit, lot.terms.currency, lot.parent_id,
        )  # fmt: skip
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await connection.execute(_INSERT_LOTS, *columns)


def _posting_rows(new: Sequence[Outcome]) -> list[tuple[object, ...]]:
    return [
        (outcome.command.organization_id, outcome.transaction_id, leg, posting.account, posting.lot_id,
         posting.hold_id, posting.amount)
        for outcome in new
        if outcome.applied is not None
        for leg, posting in enumerate(outcome.applied.postings)
    ]  # fmt: skip


async def _insert_postings(connection: asyncpg.Connection, new: Sequence[Outcome]) -> None:
    records = _posting_rows(new)
    if records:
        await connection.copy_records_to_table("ledger_postings", records=records, columns=_POSTING_COLUMNS)


async def _update_lots(connection: asyncpg.Connection, rows: list[tuple[UUID, UUID, int]]) -> None:
    if rows:
        org_ids, lot_ids, remaining = zip(*rows, strict=True)
        await connection.execute(_UPDATE_LOTS, list(org_ids), list(lot_ids), list(remaining))
