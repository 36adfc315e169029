"""Poison isolation: an entry that fails to apply or to be written, or keeps killing its workers,
is dead-lettered and its caller told COMMAND_FAILED, while everything else in its batch and its
partition is applied exactly once; and the operator's tools list, retry and drop dead letters."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as redis

from graphql_api.shell import cli
from ledger import constants
from ledger.core.commands import Command, Envelope, GrantCredits, RecordUsage
from ledger.core.entries import Status
from ledger.core.errors import ErrorCode
from ledger.core.money import MicroCredits
from ledger.core.wire import encode
from ledger.runtime.settings import Settings
from ledger.store import journal
from ledger.store.balances import balances_by_orgs
from ledger.store.verify import verify
from ledger.stream import dead_letters, keys
from ledger.stream.failpoints import poisoning
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from ledger.stream.replies import Reply
from ledger.stream.worker import LedgerWorker
from tests.conftest import running_worker

COMMAND_FAILED = ErrorCode.COMMAND_FAILED
CREDIT = 1_000_000
GRANT = MicroCredits(10_000 * CREDIT)
SMS = CREDIT  # the example catalog's price of one sms.message
DEADLINE_S = 60


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, deadline_s: float = DEADLINE_S) -> None:
    give_up = time.monotonic() + deadline_s
    while not await condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def organizations_in(pool: asyncpg.Pool, partition: int, count: int, partition_count: int) -> list[UUID]:
    """`count` new organizations whose mailbox is `partition`."""
    orgs: list[UUID] = []
    while len(orgs) < count:
        org = uuid.uuid4()
        if keys.partition_of(org, partition_count) == partition:
            orgs.append(org)
    await pool.executemany("INSERT INTO organizations (id, name) VALUES ($1, $2)", [(o, f"org {o}") for o in orgs])
    return orgs


def command(org: UUID, key: str, payload: Any, reply_to: str | None = None) -> Command:
    return Command(Envelope(uuid.uuid4(), org, key, datetime.now(UTC), reply_to), payload)


def usage(org: UUID, key: str, reply_to: str | None = None) -> Command:
    return command(org, key, RecordUsage("sms.message", Decimal(1)), reply_to)


@pytest.fixture
async def mailbox(settings: Settings, redis_client: redis.Redis) -> AsyncIterator[Mailbox]:
    """A mailbox whose callers can wait for results, as the API's are."""
    hub = PubSubHub(redis_client)
    await hub.start()
    box = Mailbox(redis_client, settings.partition_count, hub)
    await box.start()
    try:
        yield box
    finally:
        await hub.stop()


@pytest.fixture
async def alerts(redis_client: redis.Redis) -> AsyncIterator[list[dict[str, Any]]]:
    """The admin alerts published while the test runs."""
    received: list[dict[str, Any]] = []
    hub = PubSubHub(redis_client)
    await hub.start()
    await hub.add(keys.ADMIN_ALERTS_CHANNEL, lambda raw: received.append(json.loads(raw)))
    try:
        yield received
    finally:
        await hub.stop()


async def send_waiting(mailbox: Mailbox, poison: Command) -> asyncio.Task[list[Reply]]:
    """Send a command whose caller waits for its result; return once it is queued."""
    stream = keys.stream(keys.partition_of(poison.organization_id, mailbox._partition_count))
    before = await mailbox._client.xlen(stream)
    waiting = asyncio.create_task(mailbox.send_and_wait([poison], timeout_ms=DEADLINE_S * 1000))

    async def queued() -> bool:
        assert not waiting.done(), waiting
        return int(await mailbox._client.xlen(stream)) > before

    await eventually(queued, "the command to be queued")
    return waiting


async def journal_counts(pool: asyncpg.Pool) -> Counter[tuple[UUID, str]]:
    rows = await pool.fetch("SELECT org_id, idempotency_key FROM ledger_transactions")
    return Counter((row["org_id"], row["idempotency_key"]) for row in rows)


async def nothing_pending(client: redis.Redis, partition_count: int) -> bool:
    for partition in range(partition_count):
        stream = keys.stream(partition)
        if await client.exists(stream) and (await client.xpending(stream, keys.CONSUMER_GROUP))["pending"]:
            return False
    return True


def assert_plain_failure(reply: Reply) -> None:
    assert reply.result.status is Status.REJECTED
    assert reply.result.code == COMMAND_FAILED
    message = reply.result.message or ""
    assert message, "the caller is told something"
    for leak in ("Traceback", "Error", "injected", "SELECT", "INSERT", "poison"):
        assert leak not in message, message


@pytest.mark.parametrize("point", ["apply", "write"])
async def test_a_poison_among_thousands_is_dead_lettered_and_everything_else_applied_once(
    point: str,
    settings: Settings,
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    catalog: dict[str, Any],
    mailbox: Mailbox,
    alerts: list[dict[str, Any]],
) -> None:
    partition = 3
    orgs = await organizations_in(pool, partition, 5, settings.partition_count)
    grants = [command(org, "grant", GrantCredits(GRANT)) for org in orgs]
    usages = [usage(orgs[n % len(orgs)], f"use-{n}") for n in range(2_000)]
    # A grant the store (or the core) fails on; were it applied, its organization would have 7 more credits.
    poison = command(orgs[0], "poison-grant", GrantCredits(MicroCredits(7 * CREDIT)), mailbox.reply_channel)

    with poisoning(point, "poison-"):
        # Sent before the worker starts, so the poison sits in the middle of full batches.
        await mailbox.send(grants + usages[:1_000])
        waiting = await send_waiting(mailbox, poison)
        await mailbox.send(usages[1_000:])
        poison_entry = (await redis_client.xrange(keys.stream(partition), count=2_000))[1_005][0]

        async with running_worker(pool, settings):
            (reply,) = await waiting
            await eventually(lambda: nothing_pending(redis_client, settings.partition_count), "nothing pending")
            # Still running: a command sent now is applied.
            (after,) = await mailbox.send_and_wait(
                [usage(orgs[1], "after", mailbox.reply_channel)], timeout_ms=DEADLINE_S * 1000
            )
            assert after.result.status is Status.ACCEPTED

    assert_plain_failure(reply)
    journaled = await journal_counts(pool)
    sent = [*grants, *usages, usage(orgs[1], "after")]
    assert journaled == Counter((c.organization_id, c.idempotency_key) for c in sent), "each applied exactly once"
    balances = await balances_by_orgs(pool, orgs, datetime.now(UTC))
    uses = Counter(c.organization_id for c in usages) + Counter([orgs[1]])
    assert {org: balances[org].total for org in orgs} == {org: GRANT - uses[org] * SMS for org in orgs}
    assert await verify(pool) == []

    (letter,) = await dead_letters.list_dead_letters(redis_client)
    assert (letter.partition, letter.entry_id, letter.command) == (partition, poison_entry.decode(), encode(poison))
    assert (letter.error, letter.organization_id, letter.command_type) == (
        "InjectedFault",
        str(orgs[0]),
        "grant_credits",
    )
    assert "poison-grant" in letter.message
    assert int(await redis_client.hget(keys.HEALTH_KEY, "dead_letters")) == 1

    async def alerted() -> bool:
        return bool(alerts)

    await eventually(alerted, "the admin alert")
    assert [(a["kind"], a["partition"], a["entry"], a["error"]) for a in alerts] == [
        ("dead_letter", str(partition), poison_entry.decode(), "InjectedFault")
    ]


async def test_a_value_the_store_refuses_is_dead_lettered(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: dict[str, Any], mailbox: Mailbox
) -> None:
    """No failpoint: PostgreSQL refuses a NUL character in text, which a command built directly
    (not validated, as the API would) can carry in its idempotency key."""
    (org,) = await organizations_in(pool, 5, 1, settings.partition_count)
    await mailbox.send([command(org, "grant", GrantCredits(GRANT)), *(usage(org, f"use-{n}") for n in range(50))])
    refused = command(org, "nul\x00key", RecordUsage("sms.message", Decimal(1)), mailbox.reply_channel)
    waiting = await send_waiting(mailbox, refused)
    await mailbox.send([usage(org, f"later-{n}") for n in range(50)])
    async with running_worker(pool, settings):
        (reply,) = await waiting
        await eventually(lambda: nothing_pending(redis_client, settings.partition_count), "nothing pending")
    assert_plain_failure(reply)
    assert sum((await journal_counts(pool)).values()) == 101
    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == GRANT - 100 * SMS
    (letter,) = await dead_letters.list_dead_letters(redis_client)
    assert letter.organization_id == str(org) and letter.command_type == "record_usage"
    assert await verify(pool) == []


async def test_an_entry_that_keeps_killing_its_workers_is_dead_lettered_unapplied(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: dict[str, Any], mailbox: Mailbox
) -> None:
    """No exception is ever caught for it: its workers die. Each dead worker read it or claimed it
    (what a new owner does), so its delivery count is past the bound; a fresh worker sets it aside
    without applying it, and applies the entries that were pending with it."""
    partition = 2
    (org,) = await organizations_in(pool, partition, 1, settings.partition_count)
    stream = keys.stream(partition)
    await mailbox.send([command(org, "grant", GrantCredits(GRANT))])
    crasher = command(org, "crasher", GrantCredits(MicroCredits(7 * CREDIT)), mailbox.reply_channel)
    waiting = await send_waiting(mailbox, crasher)
    # Pending with it: one claimed as often as the bound allows (so it is applied, alone), and others.
    await mailbox.send([usage(org, f"pending-{n}") for n in range(20)])
    await redis_client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    read = await redis_client.xreadgroup(keys.CONSUMER_GROUP, "dead-0", {stream: ">"}, count=22)
    (_, entries), = read  # fmt: skip
    crasher_id, survivor_id = entries[1][0], entries[2][0]
    for death in range(1, constants.dead_letter_deliveries_max + 1):
        claimed = [crasher_id] if death < constants.dead_letter_deliveries_max - 1 else [crasher_id, survivor_id]
        await redis_client.xclaim(stream, keys.CONSUMER_GROUP, f"dead-{death}", 0, claimed)
    deliveries = {row["message_id"]: row["times_delivered"] for row in await redis_client.xpending_range(
        stream, keys.CONSUMER_GROUP, "-", "+", 100
    )}  # fmt: skip
    assert deliveries[crasher_id] == constants.dead_letter_deliveries_max + 1
    assert deliveries[survivor_id] == 3  # the fresh worker's claim makes it 4: at or over the "alone" bound
    assert constants.dead_letter_alone_deliveries_min <= 4 <= constants.dead_letter_deliveries_max
    await mailbox.send([usage(org, f"live-{n}") for n in range(30)])

    async with running_worker(pool, settings):
        (reply,) = await waiting
        await eventually(lambda: nothing_pending(redis_client, settings.partition_count), "nothing pending")

    assert_plain_failure(reply)
    journaled = await journal_counts(pool)
    assert (org, "crasher") not in journaled
    assert set(journaled.values()) == {1} and len(journaled) == 1 + 20 + 30
    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == GRANT - 50 * SMS
    (letter,) = await dead_letters.list_dead_letters(redis_client)
    assert (letter.entry_id, letter.error, letter.command) == (
        crasher_id.decode(),
        "DeliveriesExhausted",
        encode(crasher),
    )
    assert await verify(pool) == []


async def test_deliveries_are_not_counted_while_an_outage_is_retried(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: dict[str, Any]
) -> None:
    """Reading pending entries again (after each failed try) counts no delivery: only a new
    owner's claim does, so a long outage never dead-letters anything."""
    partition = 4
    (org,) = await organizations_in(pool, partition, 1, settings.partition_count)
    await Mailbox(redis_client, settings.partition_count).send([command(org, "grant", GrantCredits(GRANT))])
    worker = LedgerWorker(pool, redis_client, settings.partition_count)
    await worker._maintain_leases()
    assert await worker._read()  # delivered once
    for _ in range(constants.dead_letter_deliveries_max + 2):
        worker._reread_pending()
        (entry,) = await worker._read()
        assert entry.history and entry.command is not None
    (row,) = await redis_client.xpending_range(keys.stream(partition), keys.CONSUMER_GROUP, "-", "+", 10)
    assert row["times_delivered"] == 1
    assert await worker.turn() == 1
    assert await dead_letters.list_dead_letters(redis_client) == []
    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == GRANT


async def run_cli(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    capsys.readouterr()
    try:
        await asyncio.to_thread(cli.main, ["dead-letters", *args])
    except SystemExit as exit_:
        assert exit_.code in (0, None), capsys.readouterr().out
    return capsys.readouterr().out


async def test_dead_letter_tools_list_retry_and_drop(
    settings: Settings,
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    catalog: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    partition = 6
    (org,) = await organizations_in(pool, partition, 1, settings.partition_count)
    mailbox = Mailbox(redis_client, settings.partition_count)
    grant = command(org, "poison-grant", GrantCredits(GRANT))
    stream = keys.stream(partition)

    async def letters() -> list[dead_letters.DeadLetter]:
        return await dead_letters.list_dead_letters(redis_client)

    async def one_letter() -> bool:
        return len(await letters()) == 1

    with poisoning("write", "poison-"):
        async with running_worker(pool, settings):
            await mailbox.send([grant])
            await eventually(one_letter, "the grant dead-lettered")
            (first,) = await letters()
            listed = await run_cli(monkeypatch, settings, capsys, "list")
            assert (
                first.id in listed and str(org) in listed and "grant_credits" in listed and "1 dead letter(s)" in listed
            )

            # Nothing fixed: it fails again and is dead-lettered again, as a new dead letter.
            retried = await run_cli(monkeypatch, settings, capsys, "retry", first.id)
            assert f"{first.id} sent again as" in retried

            async def dead_again() -> bool:
                current = await letters()
                return len(current) == 1 and current[0].id != first.id

            await eventually(dead_again, "the retried grant dead-lettered again")
    (second,) = await letters()
    assert (second.command, second.partition) == (first.command, partition)
    assert second.entry_id != first.entry_id

    # Fixed (the point disarmed): a retry applies it, once, even if retried twice.
    async with running_worker(pool, settings):
        assert await dead_letters.retry(redis_client, second.id) is not None
        await redis_client.xadd(stream, {"c": second.command})  # a duplicate retry: its key absorbs it
        await eventually(lambda: nothing_pending(redis_client, settings.partition_count), "nothing pending")

        async def applied() -> bool:
            return (org, "poison-grant") in await journal_counts(pool)

        await eventually(applied, "the retried grant applied")
        assert await letters() == []
        # An unreadable entry is dead-lettered too, with the same fields; drop deletes it.
        await redis_client.xadd(stream, {"c": b"{not json"})
        await eventually(one_letter, "the unreadable entry dead-lettered")
    assert (await journal_counts(pool))[(org, "poison-grant")] == 1
    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == GRANT
    (garbage,) = await letters()
    assert (garbage.partition, garbage.command, garbage.organization_id) == (partition, b"{not json", "")
    assert garbage.error == "DecodeError"  # msgspec.DecodeError, a ValueError
    with pytest.raises(SystemExit):
        await asyncio.to_thread(cli.main, ["dead-letters", "drop", "0-1"])  # no such dead letter: fails
    assert "dropped" in await run_cli(monkeypatch, settings, capsys, "drop", garbage.id)
    assert await letters() == []
    assert "0 dead letter(s)" in await run_cli(monkeypatch, settings, capsys, "list")
    assert int(await redis_client.hget(keys.HEALTH_KEY, "dead_letters")) == 3
    assert await verify(pool) == []


async def test_the_servers_own_trouble_is_waited_out_not_dead_lettered(
    settings: Settings,
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    catalog: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk fails every batch whatever it holds: splitting would dead-letter everything, so
    it is retried like an outage until PostgreSQL can write again."""
    (org,) = await organizations_in(pool, 1, 1, settings.partition_count)
    write_outcomes = journal.write_outcomes
    failures = 0

    async def disk_full_for_a_while(*args: Any) -> None:
        nonlocal failures
        if failures < 20:  # enough for any split to reach single entries, and fail them twice
            failures += 1
            raise asyncpg.DiskFullError("could not extend file: No space left on device")
        await write_outcomes(*args)

    monkeypatch.setattr(journal, "write_outcomes", disk_full_for_a_while)
    monkeypatch.setattr(constants, "worker_retry_delay_s", 0.01)
    commands = [command(org, "grant", GrantCredits(GRANT)), *(usage(org, f"use-{n}") for n in range(40))]
    await Mailbox(redis_client, settings.partition_count).send(commands)
    async with running_worker(pool, settings):

        async def applied() -> bool:
            return sum((await journal_counts(pool)).values()) == len(commands)

        await eventually(applied, "every command applied once the disk has room")
        await eventually(lambda: nothing_pending(redis_client, settings.partition_count), "nothing pending")
    assert failures == 20
    assert await dead_letters.list_dead_letters(redis_client) == []
    assert (await balances_by_orgs(pool, [org], datetime.now(UTC)))[org].total == GRANT - 40 * SMS
