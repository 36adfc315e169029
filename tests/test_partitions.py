"""Partitions shared by several workers: fair shares and rebalancing, and fencing that keeps a
worker which lost its lease from committing anything."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as redis

from ledger.billing.catalog import Catalog
from ledger.core.commands import Command, Envelope, GrantCredits, RecordUsage
from ledger.core.money import MicroCredits
from ledger.runtime.settings import Settings
from ledger.store import fences
from ledger.store.balances import balances_by_orgs
from ledger.stream import keys
from ledger.stream.mailbox import Mailbox
from ledger.stream.worker import LedgerWorker

CREDIT = 1_000_000


async def _org(pool: asyncpg.Pool) -> uuid.UUID:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Fenced')", org)
    return org


def _usage(org: uuid.UUID, count: int, prefix: str = "use") -> list[Command]:
    now = datetime.now(UTC)
    return [
        Command(Envelope(uuid.uuid4(), org, f"{prefix}-{i}", now), RecordUsage("sms.message", Decimal(1)))
        for i in range(count)
    ]


def _grant(org: uuid.UUID, credits: int) -> Command:
    return Command(
        Envelope(uuid.uuid4(), org, "grant", datetime.now(UTC)), GrantCredits(MicroCredits(credits * CREDIT))
    )


async def _drain(worker: LedgerWorker, turns: int = 20) -> int:
    handled = 0
    for _ in range(turns):
        handled += await worker.turn()
    return handled


async def test_workers_share_partitions_fairly_and_take_over_when_one_leaves(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    count = settings.partition_count
    first = LedgerWorker(pool, redis_client, count, lease_ttl_ms=600)
    second = LedgerWorker(pool, redis_client, count, lease_ttl_ms=600)

    await first._maintain_leases()
    assert first.leases.held == set(range(count)), "alone, a worker takes every partition"
    await second._maintain_leases()  # joins: all taken, nothing to take yet
    await first._maintain_leases()  # sees two workers: sheds down to its fair share
    await second._maintain_leases()  # takes what was shed
    assert len(first.leases.held) == len(second.leases.held) == count // 2
    assert first.leases.held | second.leases.held == set(range(count))
    assert set(first._tokens) == first.leases.held and set(second._tokens) == second.leases.held

    # A clean stop frees its partitions at once.
    await second.leases.release_all()
    await first._maintain_leases()
    assert first.leases.held == set(range(count))

    # A worker that dies (no release) is replaced once its heartbeat and leases lapse.
    await second._maintain_leases()
    await first._maintain_leases()
    await second._maintain_leases()
    assert second.leases.held, "rebalanced again"
    await asyncio.sleep(0.7)  # `second` stops renewing: its TTL of 600 ms runs out
    await first._maintain_leases()
    assert first.leases.held == set(range(count))


async def test_a_worker_whose_lease_was_taken_cannot_commit(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: Catalog
) -> None:
    org = await _org(pool)
    mailbox = Mailbox(redis_client, settings.partition_count)
    await mailbox.send([_grant(org, 100)])
    stale = LedgerWorker(pool, redis_client, settings.partition_count)
    await stale._maintain_leases()
    assert await _drain(stale, 1) == 1

    usage = _usage(org, 10)
    await mailbox.send(usage)
    entries = await stale._read()
    assert len(entries) == len(usage)
    # `stale` stalls here past its lease (we make the lease lapse); another worker takes over.
    await redis_client.delete(*(keys.lease(p) for p in range(settings.partition_count)), keys.WORKER_REGISTRY)
    heir = LedgerWorker(pool, redis_client, settings.partition_count)
    await heir._maintain_leases()

    await stale._process(entries)  # wakes up and tries to commit what it read
    assert not await stale._settle()
    partition = keys.partition_of(org, settings.partition_count)
    assert partition not in stale.leases.held and partition not in stale._tokens
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org) == 1

    assert await _drain(heir, len(usage)) == len(usage)
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org) == 1 + len(usage)
    balance = (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org]
    spent = await pool.fetchval(
        "SELECT -sum(amount) FROM ledger_postings WHERE org_id = $1 AND account = 'lot' AND amount < 0", org
    )
    assert balance.total == 100 * CREDIT - spent
    assert (await redis_client.xpending(keys.stream(partition), keys.CONSUMER_GROUP))["pending"] == 0


async def test_entries_a_fenced_out_worker_read_after_the_takeover_are_reclaimed(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: Catalog
) -> None:
    org = await _org(pool)
    mailbox = Mailbox(redis_client, settings.partition_count)
    await mailbox.send([_grant(org, 100)])
    stale = LedgerWorker(pool, redis_client, settings.partition_count, lease_ttl_ms=300)
    await stale._maintain_leases()
    await _drain(stale, 1)

    await redis_client.delete(*(keys.lease(p) for p in range(settings.partition_count)), keys.WORKER_REGISTRY)
    heir = LedgerWorker(pool, redis_client, settings.partition_count, lease_ttl_ms=300)
    await heir._maintain_leases()
    # Only now does the stale worker read new entries: they become pending under its name.
    usage = _usage(org, 5)
    await mailbox.send(usage)
    stranded = await stale._read_group(
        {keys.partition_of(org, settings.partition_count): ">"}, block_ms=None
    )  # as its last read before it noticed
    assert len(stranded) == len(usage)
    await stale._process(stranded)
    assert not await stale._settle()
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org) == 1

    await asyncio.sleep(0.35)  # idle for a lease's length: the new owner claims them
    heir._next_lease_at = 0
    assert await _drain(heir, len(usage)) == len(usage)
    assert await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE org_id = $1", org) == 1 + len(usage)


async def test_a_takeover_waits_for_a_commit_in_flight(pool: asyncpg.Pool) -> None:
    (token,) = (await fences.claim(pool, [7], "first")).values()
    async with pool.acquire() as connection, connection.transaction():
        await fences.check(connection, {7: token})  # the first owner's batch, not yet committed
        takeover = asyncio.create_task(fences.claim(pool, [7], "second"))
        await asyncio.sleep(0.2)
        assert not takeover.done(), "a takeover must not slip in under a commit"
    claimed = await asyncio.wait_for(takeover, 5)
    assert claimed == {7: token + 1}
    async with pool.acquire() as connection, connection.transaction():
        with pytest.raises(fences.FencedOut):
            await fences.check(connection, {7: token})
