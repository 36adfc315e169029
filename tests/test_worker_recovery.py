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
from ledger.stream.keys import DEAD_LETTER_STREAM
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

    async def die(*_: object) -> None:  # after the commit, before acknowledging anything
        return None

    doomed._after_commit = die  # type: ignore[method-assign]
    await doomed._process(entries)
    assert await doomed._settle()
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org) == len(commands)
    # Its leases and its heartbeat lapse.
    await redis_client.delete(*(keys.lease(p) for p in range(settings.partition_count)), keys.WORKER_REGISTRY)

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


async def test_a_command_for_an_unknown_organization_is_dead_lettered_not_fatal(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: dict[str, Any]
) -> None:
    org, ghost = uuid.uuid4(), uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Real')", org)
    mailbox = Mailbox(redis_client, settings.partition_count)
    now = datetime.now(UTC)
    grant = GrantCredits(MicroCredits(5_000_000))
    await mailbox.send([
        Command(Envelope(uuid.uuid4(), ghost, "grant", now), grant),
        Command(Envelope(uuid.uuid4(), org, "grant", now), grant),
    ])  # fmt: skip

    worker = LedgerWorker(pool, redis_client, settings.partition_count)
    await worker._maintain_leases()
    handled = 0
    for _ in range(20):  # the first turns may read nothing while the group is being created
        handled += await worker.turn()
        if handled >= 2:
            break
    assert handled == 2
    await worker._settle()

    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == 5_000_000
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions") == 1
    (dead,) = await redis_client.xrange(DEAD_LETTER_STREAM)
    assert int(dead[1][b"partition"]) == keys.partition_of(ghost, settings.partition_count)
    for partition in {keys.partition_of(o, settings.partition_count) for o in (org, ghost)}:
        assert (await redis_client.xpending(keys.stream(partition), keys.CONSUMER_GROUP))["pending"] == 0
