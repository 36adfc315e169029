"""The journal's rows: a result is stored without what its columns already hold, and a retry is
still answered with the first result, for rows written so and for rows written in full before."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from ledger.core.entries import Result, Status, result_to_dict
from ledger.core.money import MicroCredits
from ledger.store import journal


def test_the_result_json_leaves_out_what_the_columns_hold() -> None:
    accepted = Result(Status.ACCEPTED, MicroCredits(1500), MicroCredits(-20), details={"credits_per_unit": "0.001"})
    data = json.loads(journal._result_json(accepted))
    assert data == {"credits_charged": 1500, "details": {"credits_per_unit": "0.001"}}
    assert journal.stored_result("accepted", -20, data) == accepted
    rejected = Result(Status.REJECTED, balance_after=MicroCredits(7), code="INSUFFICIENT_CREDITS", message="short")
    data = json.loads(journal._result_json(rejected))
    assert data == {"credits_charged": 0, "details": {}, "code": "INSUFFICIENT_CREDITS", "message": "short"}
    assert journal.stored_result("rejected", 7, data) == rejected
    # A row written before migration 020 holds the whole result; its columns say the same.
    assert journal.stored_result("rejected", 7, result_to_dict(rejected)) == rejected


async def test_load_stored_answers_with_the_first_result(pool: asyncpg.Pool) -> None:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'rows')", org)
    first = Result(Status.REJECTED, balance_after=MicroCredits(3), code="UNKNOWN_PRODUCT", message="no rate")
    old = Result(Status.ACCEPTED, MicroCredits(9), MicroCredits(12), details={"cost": "0.1"})
    rows = [
        ("new-row", journal._result_json(first), first),
        ("old-row", json.dumps(result_to_dict(old)), old),
    ]
    for key, text, result in rows:
        await pool.execute(
            """INSERT INTO ledger_transactions (org_id, id, idempotency_key, fingerprint, command_type, payload,
                   status, result, balance_after, received_at)
               VALUES ($1, $2, $3, 'f', 'record_usage', '{}'::jsonb, $4, $5::text::jsonb, $6, $7)""",
            org, uuid.uuid4(), key, result.status.value, text, result.balance_after, datetime.now(UTC),
        )  # fmt: skip
    async with pool.acquire() as connection:
        stored = await journal.load_stored(connection, [(org, "new-row"), (org, "old-row"), (org, "absent")])
    assert {key: s.result for (_, key), s in stored.items()} == {"new-row": first, "old-row": old}
