"""What the database itself guarantees: migrations run once, the journal is append-only and every
transaction's postings sum to zero."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from ledger.store.migrate import available, migrate


async def test_migrations_apply_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        assert await migrate(connection) == []
        versions = [row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")]
    assert versions == [migration.version for migration in available()]


async def _transaction(connection: asyncpg.Connection, org: uuid.UUID) -> uuid.UUID:
    transaction_id = uuid.uuid4()
    await connection.execute(
        """INSERT INTO ledger_transactions (org_id, id, idempotency_key, fingerprint, command_type, payload, status,
               result, balance_after, received_at)
           VALUES ($1, $2, $3, 'f', 'test', '{}', 'accepted', '{}', 0, now())""",
        org,
        transaction_id,
        str(transaction_id),
    )
    return transaction_id


async def _post(connection: asyncpg.Connection, org: uuid.UUID, debit: int, credit: int) -> None:
    """One transaction with two legs: -debit from issuance, +credit to usage."""
    transaction_id = await _transaction(connection, org)
    await connection.execute(
        """INSERT INTO ledger_postings (org_id, transaction_id, leg, account, amount)
           VALUES ($1, $2, 0, 'issuance:base', $3), ($1, $2, 1, 'usage:x', $4)""",
        org,
        transaction_id,
        -debit,
        credit,
    )


async def test_unbalanced_postings_are_refused(pool: asyncpg.Pool) -> None:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'x')", org)
    async with pool.acquire() as connection:
        with pytest.raises(asyncpg.CheckViolationError, match="do not sum to zero"):
            async with connection.transaction():
                await _post(connection, org, debit=5, credit=4)
        async with connection.transaction():
            await _post(connection, org, debit=5, credit=5)
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await connection.execute("UPDATE ledger_postings SET amount = 6 WHERE leg = 1")
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await connection.execute("DELETE FROM ledger_transactions")


async def test_journal_references_are_checked_per_statement(pool: asyncpg.Pool) -> None:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'x')", org)
    async with pool.acquire() as connection:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown organization"):
            await _transaction(connection, uuid.uuid4())
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown transaction"):
            await connection.execute(
                """INSERT INTO ledger_postings (org_id, transaction_id, leg, account, amount)
                   VALUES ($1, $2, 0, 'issuance:base', -1), ($1, $2, 1, 'usage:x', 1)""",
                org,
                uuid.uuid4(),
            )
        for column, account, reference in [("lot_id", "lot", "lot"), ("hold_id", "hold", "hold")]:
            async with connection.transaction():
                transaction_id = await _transaction(connection, org)
                with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"unknown {reference}"):
                    await connection.execute(
                        f"""INSERT INTO ledger_postings (org_id, transaction_id, leg, account, {column}, amount)
                            VALUES ($1, $2, 0, '{account}', $3, -1), ($1, $2, 1, 'usage:x', NULL, 1)""",
                        org,
                        transaction_id,
                        uuid.uuid4(),
                    )
