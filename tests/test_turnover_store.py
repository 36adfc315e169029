"""Period turnover against the real PostgreSQL, Redis and a ledger worker: the first period granted
at once, a repeat adding nothing, a crash between the commands and the facts healed by the next run
under the same keys, concurrent runs recording each fact once, a refused fact stopping only its
subscription, and a month's turnover moving the unused base into the bank."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import redis.asyncio as redis

from ledger.billing.catalog import Catalog, Interval
from ledger.billing.catalog_file import parse_catalog
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.billing.turnover import Reason, due_facts
from ledger.core.bounds import CREDITS_MAX
from ledger.core.commands import GrantCredits, LotKind
from ledger.core.money import MicroCredits
from ledger.directory.organizations import create_organization
from ledger.runtime.settings import Settings
from ledger.store.catalog_versions import load_catalog, save_catalog
from ledger.store.verify import verify
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from ledger.subscriptions import periods, store
from ledger.subscriptions.effects import LedgerEffect, LedgerEffects
from ledger.subscriptions.turnover import advance_due, advance_subscription
from tests.conftest import repository_root, running_worker

CREDIT = 1_000_000
NEW_YORK = ZoneInfo("America/New_York")
ANCHOR = datetime(2028, 1, 31, tzinfo=NEW_YORK).astimezone(UTC)

_LOTS_BY_KIND = """
SELECT kind, sum(remaining)::bigint AS remaining FROM credit_lots
WHERE org_id = $1 AND effective_at <= $2 AND (expires_at IS NULL OR expires_at > $2) AND remaining > 0
GROUP BY kind
"""
_JOURNALED = "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2"


def example_catalog() -> Catalog:
    return parse_catalog((repository_root() / "graphql_api" / "catalog.toml").read_text())


async def store_catalog(pool: asyncpg.Pool) -> Catalog:
    async with pool.acquire() as connection:
        await save_catalog(connection, example_catalog())
    return await load_catalog(pool)


async def subscribe(
    pool: asyncpg.Pool, plan: str, anchor: datetime = ANCHOR, timezone: str = "America/New_York", **more: object
) -> Subscription:
    """A subscription row as the subscriptions service writes it (its organization made first)."""
    org = uuid.uuid4()
    await create_organization(pool, org, f"org {org}")
    subscription = Subscription(
        id=uuid.uuid4(), organization_id=org, plan_key=plan, interval=Interval.MONTHLY, seats=0, anchor=anchor,
        timezone=timezone, status=SubscriptionStatus.ACTIVE, created_at=anchor,
        segments=(PlanSegment(anchor, plan, 0),), **more,  # type: ignore[arg-type]
    )  # fmt: skip
    return await store.insert_subscription(pool, subscription)


async def lots_by_kind(pool: asyncpg.Pool, org: uuid.UUID, at: datetime) -> dict[str, int]:
    return {row["kind"]: row["remaining"] for row in await pool.fetch(_LOTS_BY_KIND, org, at)}


@contextlib.asynccontextmanager
async def ledger_effects(client: redis.Redis, settings: Settings) -> AsyncIterator[LedgerEffects]:
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, settings.partition_count, hub)
    await mailbox.start()
    try:
        yield LedgerEffects(mailbox)
    finally:
        await hub.stop()


async def test_the_first_period_is_granted_at_once_and_a_repeat_adds_nothing(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    catalog = await store_catalog(pool)
    sub = await subscribe(pool, "act3-creator")
    now = ANCHOR + timedelta(minutes=1)
    async with running_worker(pool, settings), ledger_effects(redis_client, settings) as effects:
        advance = await advance_subscription(pool, effects, catalog, sub.id, now)
        assert [fact.reason for fact in advance.recorded] == [Reason.CHARGE, Reason.BASE]
        assert advance.next_due_at == datetime(2028, 2, 29, tzinfo=NEW_YORK).astimezone(UTC)
        again = await advance_subscription(pool, effects, catalog, sub.id, now + timedelta(days=1))
        assert again.recorded == () and again.problem is None
    assert await lots_by_kind(pool, sub.organization_id, now) == {"base": 33_000 * CREDIT}
    facts = await periods.facts_of(pool, sub.id)
    assert [(fact.reason, fact.credits) for fact in facts] == [("base", 33_000 * CREDIT), ("charge", None)]
    [charge] = await store.charges_of(pool, sub.organization_id, sub.id)
    assert (charge.kind, str(charge.amount), charge.idempotency_key) == (
        "plan",
        "35.00",
        f"{facts[1].idempotency_key}:plan",
    )
    assert await verify(pool) == []


async def test_a_crash_between_the_commands_and_the_facts_is_healed_under_the_same_keys(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    catalog = await store_catalog(pool)
    sub = await subscribe(pool, "meclabs-build")
    now = ANCHOR + timedelta(days=70)  # three periods due: a catch-up
    async with running_worker(pool, settings), ledger_effects(redis_client, settings) as effects:
        # What a run that died after sending left behind: the commands applied, no fact recorded.
        due = due_facts(sub, catalog, (), now)
        sent = [LedgerEffect(f.key, f.payload, now) for f in due.facts if f.payload is not None]
        first = await effects.apply(sub.organization_id, sent)
        advance = await advance_subscription(pool, effects, catalog, sub.id, now)
    assert [fact.key for fact in advance.recorded] == [fact.key for fact in due.facts]
    recorded = {fact.idempotency_key: fact.transaction_id for fact in await periods.facts_of(pool, sub.id)}
    assert {effect.idempotency_key: reply.transaction_id for effect, reply in zip(sent, first, strict=True)} == {
        key: transaction for key, transaction in recorded.items() if transaction is not None
    }
    for effect in sent:
        assert await pool.fetchval(_JOURNALED, sub.organization_id, effect.idempotency_key) == 1
    # BUILD resets: what period 0 and 1 left is breakage, period 2's 6,000 are there.
    assert await lots_by_kind(pool, sub.organization_id, now) == {"base": 6_000 * CREDIT}
    assert await verify(pool) == []


async def test_concurrent_runs_record_each_fact_once(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    catalog = await store_catalog(pool)
    subs = [await subscribe(pool, plan) for plan in ("act3-creator", "meclabs-build") * 4]
    now = ANCHOR + timedelta(days=400)
    async with running_worker(pool, settings), contextlib.AsyncExitStack() as stack:
        runners = [await stack.enter_async_context(ledger_effects(redis_client, settings)) for _ in range(3)]
        for _ in range(3):  # 13 months are 40-odd facts: a second run finishes what the bound left
            await asyncio.gather(*(advance_due(pool, effects, catalog, now) for effects in runners))
    for sub in subs:
        facts = await periods.facts_of(pool, sub.id)
        keys = [(fact.period_start, fact.reason) for fact in facts]
        assert len(keys) == len(set(keys))
        assert (
            sum(fact.reason == "base" for fact in facts) == 14 and sum(fact.reason == "close" for fact in facts) == 13
        )
        rows = await pool.fetch(
            "SELECT idempotency_key FROM ledger_transactions WHERE org_id = $1", sub.organization_id
        )
        assert sorted(row[0] for row in rows) == sorted(
            fact.idempotency_key for fact in facts if fact.reason != "charge"
        )
    assert await pool.fetchval("SELECT count(*) FROM subscriptions WHERE turnover_due_at <= $1", now) == 0
    assert await verify(pool) == []


async def test_a_refused_fact_stops_its_subscription_only_and_is_tried_again_later(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    catalog = await store_catalog(pool)
    full, other = await subscribe(pool, "act3-creator"), await subscribe(pool, "act3-creator")
    now = ANCHOR + timedelta(minutes=1)
    async with running_worker(pool, settings), ledger_effects(redis_client, settings) as effects:
        # The org holds all the credits the ledger's range allows: no base grant fits.
        huge = GrantCredits(MicroCredits(CREDITS_MAX), kind=LotKind.PURCHASED)
        await effects.apply(full.organization_id, [LedgerEffect("manual:full", huge, now)])
        advances = {advance.subscription_id: advance for advance in await advance_due(pool, effects, catalog, now)}
    assert advances[full.id].problem is not None and "OUT_OF_RANGE" in advances[full.id].problem
    assert [fact.reason for fact in advances[full.id].recorded] == [Reason.CHARGE]
    assert advances[full.id].next_due_at == now + timedelta(seconds=60)
    assert [fact.reason for fact in advances[other.id].recorded] == [Reason.CHARGE, Reason.BASE]
    assert [fact.reason for fact in await periods.facts_of(pool, full.id)] == ["charge"]


async def test_a_month_of_rollover_banks_the_unused_base_and_grants_the_next(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    catalog = await store_catalog(pool)
    creator, build = await subscribe(pool, "act3-creator"), await subscribe(pool, "meclabs-build")
    march = datetime(2028, 3, 1, tzinfo=NEW_YORK).astimezone(UTC)
    async with running_worker(pool, settings), ledger_effects(redis_client, settings) as effects:
        await advance_due(pool, effects, catalog, march)
    assert await lots_by_kind(pool, creator.organization_id, march) == {"base": 33_000 * CREDIT,
                                                                      "rollover": 33_000 * CREDIT}  # fmt: skip
    assert await lots_by_kind(pool, build.organization_id, march) == {"base": 6_000 * CREDIT}
    assert await verify(pool) == []


def test_the_example_catalog_is_where_the_tests_read_it() -> None:
    assert Path(repository_root() / "graphql_api" / "catalog.toml").exists()
