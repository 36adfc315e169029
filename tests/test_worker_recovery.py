"""A worker that dies after its commit but before acknowledging: the next owner of the partition
claims the entries, finds them journaled, and answers without applying them twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as redis

from ledger.core.commands import Command, Envelope, GrantCredits, RecordUsage
from ledger.core.money import MicroCredits
from ledger.runtime.settings import Settings
from ledger.store.balances import balances_by_orgs
from ledger.stream import keys
from ledger.stream.mailbox import Mailbox
from ledger.stream.worker import LedgerWorker


async def test_redelivered_entries_apply_exactly_once(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: dict[str, Any]
) -> None:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Crashy')", org)
    mailbox = Mailbox(redis_client, settings.partition_count)
    now = datetime.now(UTC)
    commands = [
        Command(Envelope(uuid.uuid4(), org, "grant", now), GrantCredits(MicroCredits(100_000_000))),
        *(
            Command(Envelope(uuid.uuid4(), org, f"use-{i}", now), RecordUsage("sms.message", Decimal(1)))
            for i in range(10)
        ),
    ]
    await mailbox.send(commands)

    doomed = LedgerWorker(pool, redis_client, settings.partition_count)
    await doomed._maintain_leases()
    entries = await doomed._read()
    assert len(entries) == len(commands)
    await doomed._commit([entry.command for entry in entries if entry.command])
    # The worker dies here: committed, never acknowledged. Its leases lapse.
    await redis_client.delete(*(keys.lease(p) for p in range(settings.partition_count)))

    heir = LedgerWorker(pool, redis_client, settings.partition_count)
    handled = await heir.turn()
    assert handled == len(commands)
    assert await heir.turn() == 0

    transactions = await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org)
    assert transactions == len(commands)
    balance = (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org]
    assert balance.total == 90_000_000
    partition = keys.partition_of(org, settings.partition_count)
    pending = await redis_client.xpending(keys.stream(partition), keys.CONSUMER_GROUP)
    assert pending["pending"] == 0
