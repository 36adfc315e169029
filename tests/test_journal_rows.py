"""The journal's rows: a retry is answered with the first result, and a row this release writes
is read alike by the release before migration 020 (a rolling deploy, a rollback)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from ledger.core.entries import Result, Status, result_from_dict, result_to_dict
from ledger.core.money import MicroCredits
from ledger.store import journal


def test_the_result_json_reads_alike_in_this_release_and_the_one_before() -> None:
    accepted = Result(Status.ACCEPTED, MicroCredits(1500), MicroCredits(-20), details={"credits_per_unit": "0.001"})
    rejected = Result(Status.REJECTED, balance_after=MicroCredits(7), code="INSUFFICIENT_CREDITS", message="short")
    for result in (accepted, rejected):
        data = json.loads(journal._result_json(result))
        assert journal.stored_result(result.status.value, result.balance_after, data) == result
        # The release before 020 read a result from the JSON alone.
        assert result_from_dict(data) == result
    assert "code" not in json.loads(journal._result_json(accepted))
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
