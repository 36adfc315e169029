"""Two years of period turnover on a simulated clock, with three real jobs workers at once and
crashes, against a real ledger worker process.

Twelve subscriptions: anchored on Jan 31, Feb 29 (2028 is a leap year) and Mar 31, in
America/New_York and Europe/Berlin (each period holds a DST change some year), on ACT3 Creator
(rollover bank: cap 66,000, lots living 6 cycles) and MECLABS BUILD (reset). The clock moves a month
at a time (the 15th, mid-period for every anchor); at each step the test enqueues the real cron job
to three jobs workers (`tests.turnover_jobs`: the real worker, its clock read from a file), which
also crash by themselves (a failpoint SIGKILLs one after it sent a subscription's commands and
before it recorded the facts) and are started again (each start runs the cron again); then each
organization uses credits. Two months pass with every jobs worker down, caught up after.

Asserted: exactly one base grant and one close per (subscription, period), in `period_facts` and in
the journal by idempotency key; periods contiguous and non-overlapping from the anchor; at every
step each organization's base and bank balances equal a model computed apart (usage takes base
first, then the bank lot expiring soonest; at a period's end what is left goes to the bank up to the
cap, the rest is breakage; a bank lot lives 6 months); the bank never over 66,000; and the journal
verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import redis.asyncio as redis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Catalog, Interval
from ledger.billing.subscription import Subscription
from ledger.core.commands import Command, Envelope, RecordUsage
from ledger.core.entries import Status
from ledger.core.state import add_months
from ledger.runtime.settings import Settings
from ledger.store.verify import verify
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from ledger.subscriptions import periods
from tests.conftest import repository_root
from tests.test_turnover_store import lots_by_kind, store_catalog, subscribe
from tests.turnover_jobs import CLOCK_FILE_VARIABLE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CREDIT = 1_000_000
JOBS_WORKERS = 3
FAILPOINT_RATE = "0.08"
STEPS = 27  # the 15th of Feb 2028 to Apr 2030: 24 periods for the last anchor (Mar 31) too
OUTAGE_STEPS = {14, 15}  # every jobs worker down: no turnover and no usage for two months
TURNOVER_JOB = "cron:advance_turnover"
STEP_TIMEOUT_S = 20
IMAGE_CREDITS = 10  # the example catalog's image.generation: 10 credits an image
ANCHORS = (datetime(2028, 1, 31), datetime(2028, 2, 29), datetime(2028, 3, 31))
ZONES = ("America/New_York", "Europe/Berlin")
PLANS = ("act3-creator", "meclabs-build")
CAP, CYCLES = 66_000 * CREDIT, 6


def creator_usage(period: int) -> int:
    """Credits an ACT3 Creator organization uses in a period: the bank fills to its cap, is drawn on
    (period 3 takes 27,000 from it), sits while every month's base is used up (its lots expire), and
    fills again."""
    if period == 3:
        return 60_000 * CREDIT
    if 4 <= period <= 8:
        return 33_000 * CREDIT
    return 10_000 * CREDIT


def usage_of(plan: str, period: int) -> int:
    return creator_usage(period) if plan == "act3-creator" else 2_000 * CREDIT


def step_time(step: int) -> datetime:
    month = 1 + step  # step 0 is Feb 15, 2028
    return datetime(2028 + month // 12, month % 12 + 1, 15, 17, tzinfo=UTC)


# --- the model, computed apart from the code under test ------------------------------------------


@dataclass
class BankLot:
    remaining: int
    created: datetime
    expires: datetime

    def live(self, at: datetime) -> bool:
        return self.remaining > 0 and self.created <= at < self.expires


@dataclass
class Model:
    """One organization's lots as the rules say they must be."""

    calendar: Calendar
    credits: int
    rollover: bool
    used: dict[int, tuple[datetime, int]] = field(default_factory=dict)  # period -> (when, credits)

    def balances(self, at: datetime) -> dict[str, int]:
        if at < self.calendar.boundary(0):
            return {}
        bank: list[BankLot] = []
        current = self.calendar.index_at(at)
        base = 0
        for index in range(current + 1):
            base = self.credits
            if index in self.used:
                when, need = self.used[index]
                take = min(base, need)
                base, need = base - take, need - take
                for lot in sorted((lot for lot in bank if lot.live(when)), key=lambda lot: lot.expires):
                    take = min(lot.remaining, need)
                    lot.remaining, need = lot.remaining - take, need - take
                assert need == 0, "the model's usage must be covered"
            if index == current:
                break
            end = self.calendar.boundary(index + 1)
            if self.rollover:
                room = CAP - sum(lot.remaining for lot in bank if lot.live(end))
                if (banked := max(0, min(base, room))) > 0:
                    bank.append(BankLot(banked, end, add_months(end, CYCLES)))
        found = {"base": base, "rollover": sum(lot.remaining for lot in bank if lot.live(at))}
        return {kind: amount for kind, amount in found.items() if amount}


# --- processes -----------------------------------------------------------------------------------


@dataclass
class JobsWorker:
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    crashes: int = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.turnover_jobs"], cwd=repository_root(), env=self.env,
                stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def restart_if_crashed(self) -> None:
        """A worker the failpoint killed is started again (its start runs the cron again)."""
        if self.process is not None and self.process.poll() is not None:
            assert self.process.returncode == -signal.SIGKILL, self.log_tail()
            self.crashes += 1
            self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process.returncode == -signal.SIGKILL:
            self.crashes += 1
        self.process = None

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def child_environment(settings: Settings, **extra: str) -> dict[str, str]:
    own = ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL")
    env = {k: v for k, v in os.environ.items() if k not in own and not k.startswith("CREDIT_LEDGER_")}
    return env | {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CREDIT_LEDGER_PARTITIONS": str(settings.partition_count),
        **extra,
    }


@contextlib.contextmanager
def ledger_worker(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "graphql_api.shell.cli", "ledger-worker"], cwd=repository_root(),
            env=child_environment(settings), stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


@contextlib.asynccontextmanager
async def waiting_mailbox(client: redis.Redis, settings: Settings) -> AsyncIterator[Mailbox]:
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, settings.partition_count, hub)
    await mailbox.start()
    try:
        yield mailbox
    finally:
        await hub.stop()


# --- the test ------------------------------------------------------------------------------------

_DUE = "SELECT count(*) FROM subscriptions WHERE status <> 'canceled' AND turnover_due_at <= $1"
_FACT_COUNTS = "SELECT reason, count(*) FROM period_facts WHERE subscription_id = $1 GROUP BY reason"


async def turned_over(pool: asyncpg.Pool, subscriptions: list[Subscription], at: datetime) -> bool:
    """Every subscription's facts due by `at` are recorded (and none is due any more)."""
    if await pool.fetchval(_DUE, at):
        return False
    for sub in subscriptions:
        counts = dict(await pool.fetch(_FACT_COUNTS, sub.id))
        started = sub.credit_calendar.index_at(at) + 1 if at >= sub.anchor else 0
        if (counts.get("base", 0), counts.get("close", 0)) != (started, max(0, started - 1)):
            return False
    return True


def set_clock(clock: Path, at: datetime) -> None:
    """Write the simulated time whole (a reader never sees half of it)."""
    staged = clock.with_suffix(".new")
    staged.write_text(at.isoformat())
    os.replace(staged, clock)


async def run_step(
    pool: asyncpg.Pool, arq: ArqRedis, workers: list[JobsWorker], subs: list[Subscription], clock: Path, at: datetime
) -> None:
    """Set the clock, run the cron on every worker, and wait until all that is due is recorded,
    starting again the workers that crashed meanwhile (each start runs the cron again)."""
    started = time.monotonic()
    enqueued = -1.0
    while True:
        waited = time.monotonic() - started
        # A fact the ledger could not answer in time is tried again a (simulated) minute later: the
        # clock moves on by two minutes every 5 s a step is slow (the usage comes an hour after).
        now = at + timedelta(minutes=2 * int(waited // 5))
        if await turned_over(pool, subs, now):
            return
        if waited > STEP_TIMEOUT_S:
            logs = "\n---\n".join(worker.log_tail() for worker in workers)
            raise AssertionError(f"turnover not done by {at} within {STEP_TIMEOUT_S} s\n{logs}")
        set_clock(clock, now)
        for worker in workers:
            worker.restart_if_crashed()
        if waited - enqueued >= 2:  # run the cron (again, if a run died holding the job)
            enqueued = waited
            for index in range(JOBS_WORKERS):
                await arq.enqueue_job(TURNOVER_JOB, _job_id=f"{now.isoformat()}:{index}:{uuid.uuid4()}")
        await asyncio.sleep(0.1)


async def use_credits(mailbox: Mailbox, sub: Subscription, plan: str, index: int, at: datetime) -> None:
    images = Decimal(usage_of(plan, index) // CREDIT // IMAGE_CREDITS)
    usage = RecordUsage("image.generation", images, occurred_at=at)
    command = Command(
        Envelope(uuid.uuid4(), sub.organization_id, f"usage:{sub.id}:{index}", at, mailbox.reply_channel), usage
    )
    (reply,) = await mailbox.send_and_wait([command], 10_000)
    assert reply.result.status is Status.ACCEPTED, reply.result


async def test_two_years_of_turnover_with_three_crashing_jobs_workers(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    catalog: Catalog = await store_catalog(pool)
    subs: list[tuple[Subscription, str, Model]] = []
    for plan_key in PLANS:
        plan = catalog.plan_at(plan_key, ANCHORS[0].replace(tzinfo=UTC))
        assert plan is not None
        for zone in ZONES:
            for wall in ANCHORS:
                sub = await subscribe(pool, plan_key, wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC), zone)
                subs.append((sub, plan_key, Model(sub.credit_calendar, plan.credits, plan_key == "act3-creator")))
    assert all(sub.interval is Interval.MONTHLY for sub, _, _ in subs)
    clock = tmp_path / "clock"
    set_clock(clock, step_time(0))
    env = child_environment(settings, CREDIT_LEDGER_FAILPOINTS=f"turnover_after_send={FAILPOINT_RATE}")
    env[CLOCK_FILE_VARIABLE] = str(clock)
    workers = [JobsWorker(env, tmp_path / f"jobs-{index}.log") for index in range(JOBS_WORKERS)]
    arq = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    only_subs = [sub for sub, _, _ in subs]
    try:
        with ledger_worker(settings, tmp_path / "ledger.log"):
            async with waiting_mailbox(redis_client, settings) as mailbox:
                for step in range(STEPS):
                    at = step_time(step)
                    if step in OUTAGE_STEPS:
                        for worker in workers:
                            worker.stop()
                        continue
                    for worker in workers:
                        if worker.process is None:
                            worker.start()
                    await run_step(pool, arq, workers, only_subs, clock, at)
                    used_at = at + timedelta(hours=1)
                    for sub, plan_key, model in subs:
                        if used_at < sub.anchor:
                            continue
                        index = sub.credit_calendar.index_at(used_at)
                        await use_credits(mailbox, sub, plan_key, index, used_at)
                        model.used[index] = (used_at, usage_of(plan_key, index))
                        found = await lots_by_kind(pool, sub.organization_id, used_at)
                        assert found == model.balances(used_at), (step, sub.anchor, sub.timezone, plan_key)
                        assert found.get("rollover", 0) <= CAP
                    _hand_computed(step, subs)
    finally:
        for worker in workers:
            worker.stop()
        await arq.aclose()
    crashes = sum(worker.crashes for worker in workers)
    assert crashes >= 1, "the failpoint never fired: the crashes were not tested"
    end = step_time(STEPS - 1) + timedelta(hours=1)
    for sub, _, _ in subs:
        await _assert_exactly_once(pool, sub, end)
    assert await verify(pool) == []
    print(f"\n{crashes} jobs worker crash(es) healed over {STEPS} steps")


def _hand_computed(step: int, subs: list[tuple[Subscription, str, Model]]) -> None:
    """The Creator anchored Jan 31 in New York, by hand: bank 23k, 46k; 66k at the cap after period
    2; period 3 uses 60k (33k base, then the bank's 23k lot and 4k of the next): 39k; the Mar 31 lot
    (19k) ends with period 7 (Sep 30), the Apr 30 lot (20k) on Oct 30."""
    sub, _, model = subs[0]
    assert (sub.anchor, sub.timezone) == (datetime(2028, 1, 31, 5, tzinfo=UTC), "America/New_York")
    expected = {1: 23_000, 2: 46_000, 3: 39_000, 4: 39_000, 8: 20_000, 9: 0, 10: 23_000}
    if step in expected:
        assert model.balances(step_time(step) + timedelta(hours=1)).get("rollover", 0) == expected[step] * CREDIT


async def _assert_exactly_once(pool: asyncpg.Pool, sub: Subscription, end: datetime) -> None:
    facts = await periods.facts_of(pool, sub.id)
    started = sub.credit_calendar.index_at(end) + 1
    for reason, count in (("base", started), ("close", started - 1), ("charge", started)):
        of_reason = [fact for fact in facts if fact.reason == reason]
        assert len(of_reason) == count, (sub.anchor, reason)
        assert len({fact.period_start for fact in of_reason}) == count
        # Contiguous and non-overlapping, from the anchor: period k is [boundary k, boundary k+1).
        assert [(f.period_start, f.period_end) for f in of_reason] == [
            (sub.credit_calendar.boundary(k), sub.credit_calendar.boundary(k + 1)) for k in range(count)
        ]
    assert {fact.reason for fact in facts} == {"base", "close", "charge"}
    rows = await pool.fetch(
        "SELECT idempotency_key, count(*) AS n FROM ledger_transactions WHERE org_id = $1 AND idempotency_key LIKE "
        "'period:%' GROUP BY idempotency_key",
        sub.organization_id,
    )
    journaled = {row["idempotency_key"]: row["n"] for row in rows}
    assert journaled == {fact.idempotency_key: 1 for fact in facts if fact.reason != "charge"}
    recorded = {fact.idempotency_key: fact.transaction_id for fact in facts if fact.reason != "charge"}
    ids = await pool.fetch(
        "SELECT idempotency_key, id FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = ANY($2)",
        sub.organization_id, list(recorded),
    )  # fmt: skip
    assert {row["idempotency_key"]: row["id"] for row in ids} == recorded
