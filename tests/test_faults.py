"""Fault tests against real servers and real processes: ledger workers SIGKILLed at random points,
Redis crashed and PostgreSQL restarted under load. Whatever the ledger acknowledged is applied
exactly once, callers only ever see retryable errors, and the journal accounts for every credit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from ledger.core.commands import Command, Envelope, GrantCredits, RecordUsage
from ledger.core.money import MicroCredits, format_credits, price
from ledger.directory.api_keys import new_key
from ledger.store.balances import balances_by_orgs
from ledger.store.catalog import Product
from ledger.store.pool import create_pool
from ledger.store.verify import verify
from ledger.stream import keys
from ledger.stream.mailbox import Mailbox
from tests.conftest import _free_port
from tests.fault_servers import (
    PARTITIONS,
    FaultServers,
    LedgerProcess,
    died_by_sigkill,
    environment,
    eventually,
    fault_servers,
    load_catalog,
    stream_report,
)

pytestmark = pytest.mark.slow

GRANT = MicroCredits(10_000_000 * 1_000_000)  # ten million credits: no usage here is ever refused
RETRYABLE = frozenset({"UNAVAILABLE", "RESULT_TIMEOUT", "OVERLOADED"})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[FaultServers]:
    with fault_servers(tmp_path / "servers") as started:
        yield started


@dataclass(frozen=True, slots=True)
class Usage:
    org: UUID
    key: str
    product: str
    quantity: Decimal


def random_usage(rng: random.Random, orgs: list[UUID], key: str) -> Usage:
    """Quantities whose prices round up (tokens at 0.001) or carry decimals (minutes)."""
    product, quantity = rng.choice(
        [
            ("gpt-4o.input-tokens", Decimal(rng.randint(1, 5_000))),
            ("gpt-4o.output-tokens", Decimal(rng.randint(1, 2_000))),
            ("sms.message", Decimal(rng.randint(1, 20))),
            ("transcription.minutes", Decimal(rng.randint(1, 600)) / 10),
            ("image.generation", Decimal(rng.randint(1, 3))),
        ]
    )
    return Usage(rng.choice(orgs), key, product, quantity)


def usage_commands(usages: Iterable[Usage]) -> list[Command]:
    """Each a fresh envelope, as a caller's retry has."""
    now = datetime.now(UTC)
    return [Command(Envelope(uuid.uuid4(), u.org, u.key, now), RecordUsage(u.product, u.quantity)) for u in usages]


def expected_totals(
    grants: Mapping[UUID, int], usages: dict[str, Usage], catalog: dict[str, Product]
) -> dict[UUID, int]:
    totals = dict(grants)
    for usage in usages.values():
        totals[usage.org] -= price(usage.quantity, catalog[usage.product].credits_per_unit)
    return totals


async def create_organizations(pool: asyncpg.Pool, count: int) -> list[UUID]:
    orgs = [uuid.uuid4() for _ in range(count)]
    await pool.executemany("INSERT INTO organizations (id, name) VALUES ($1, $2)", [(o, f"org {o}") for o in orgs])
    return orgs


async def assert_ledger_exact(
    pool: asyncpg.Pool,
    client: redis.Redis,
    usages: dict[str, Usage],
    grants: Mapping[UUID, int],
    catalog: dict[str, Product],
) -> None:
    """Every usage key journaled exactly once and accepted, balances are grants minus the priced
    usage, the journal verifies, and no stream entry is left pending or unread."""
    rows = await pool.fetch(
        "SELECT idempotency_key, status, count(*) OVER (PARTITION BY org_id, idempotency_key) AS copies"
        " FROM ledger_transactions WHERE command_type = 'record_usage'"
    )
    assert {row["idempotency_key"] for row in rows} == set(usages), "journaled keys differ from the keys sent"
    assert len(rows) == len(usages)
    assert {row["copies"] for row in rows} == {1}
    assert {row["status"] for row in rows} == {"accepted"}
    balances = await balances_by_orgs(pool, list(grants), datetime.now(UTC))
    actual = {org: balance.total for org, balance in balances.items()}
    assert actual == expected_totals(grants, usages, catalog)
    assert await verify(pool) == []
    for partition in range(PARTITIONS):
        stream = keys.stream(partition)
        if not await client.exists(stream):
            continue
        assert (await client.xpending(stream, keys.CONSUMER_GROUP))["pending"] == 0, f"partition {partition}"
        (group,) = await client.xinfo_groups(stream)
        last_id = (await client.xinfo_stream(stream))["last-generated-id"]
        assert group["last-delivered-id"] == last_id, f"partition {partition} has unread entries"


async def usage_journaled(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE command_type = 'record_usage'")
    return count


async def nothing_pending(client: redis.Redis) -> bool:
    for partition in range(PARTITIONS):
        stream = keys.stream(partition)
        if await client.exists(stream) and (await client.xpending(stream, keys.CONSUMER_GROUP))["pending"]:
            return False
    return True


# --- ledger workers killed at random points --------------------------------------------------------

FAILPOINTS = ("before_apply", "in_transaction", "after_commit")
# One failpoint is armed per worker process, so a worker's SIGKILL we did not send names the point
# that fired. At 0.15 a busy worker lives for about seven batches.
FAILPOINT_PROBABILITY = 0.15
WORKERS_ALIVE = 2
USAGE_EVENTS = 2_000
CHUNK = 20  # commands per Mailbox.send
KILLS_MIN = 5
EXTERNAL_KILLS_MIN = 2
# Rare enough that most deaths are the failpoints' (a worker needs about a second to start).
EXTERNAL_KILL_INTERVAL_S = (1.0, 3.0)


@dataclass
class Crew:
    """Keeps WORKERS_ALIVE worker processes running, arming each new one with the failpoint that
    fired least so far, and SIGKILLs one from outside at random moments while `killing`."""

    env: dict[str, str]
    log_dir: Path
    rng: random.Random
    armed: bool = True
    killing: bool = True
    alive: list[LedgerProcess] = field(default_factory=list)
    dead: list[LedgerProcess] = field(default_factory=list)
    started: int = 0

    def fired(self) -> Counter[str]:
        return Counter(w.failpoint for w in self.dead if w.failpoint and died_by_sigkill(w) and not w.killed_by_us)

    def external_kills(self) -> int:
        return sum(w.killed_by_us for w in self.dead)

    def crashes(self) -> list[LedgerProcess]:
        return [w for w in self.dead if not died_by_sigkill(w)]

    def quota_met(self) -> bool:
        fired = self.fired()
        return (
            all(fired[name] for name in FAILPOINTS)
            and self.external_kills() >= EXTERNAL_KILLS_MIN
            and len(self.dead) >= KILLS_MIN
        )

    def _spawn(self) -> None:
        point = None
        if self.armed:
            fired, armed_now = self.fired(), Counter(w.failpoint for w in self.alive)
            point = min(FAILPOINTS, key=lambda name: (fired[name], armed_now[name], self.rng.random()))
        spec = f"{point}={FAILPOINT_PROBABILITY}" if point else ""
        self.started += 1
        log_path = self.log_dir / f"worker-{self.started}.log"
        env = self.env | {"CREDIT_LEDGER_FAILPOINTS": spec}
        self.alive.append(LedgerProcess("ledger-worker", log_path, env, failpoint=point))

    async def run(self) -> None:
        next_kill = time.monotonic() + self.rng.uniform(*EXTERNAL_KILL_INTERVAL_S)
        while True:
            for worker in [w for w in self.alive if w.returncode is not None]:
                self.alive.remove(worker)
                self.dead.append(worker)
            if self.killing and time.monotonic() >= next_kill and self.alive:
                victim = self.rng.choice(self.alive)
                victim.kill()
                self.alive.remove(victim)
                self.dead.append(victim)
                next_kill = time.monotonic() + self.rng.uniform(*EXTERNAL_KILL_INTERVAL_S)
            while len(self.alive) < WORKERS_ALIVE:
                self._spawn()
            await asyncio.sleep(0.02)

    def stop(self) -> list[int]:
        return [worker.stop() for worker in self.alive]

    def summary(self) -> str:
        return (
            f"{len(self.dead)} workers died: {self.external_kills()} SIGKILLed by the test, "
            f"failpoints fired {dict(self.fired())}, {len(self.crashes())} crashed otherwise"
        )


async def test_workers_killed_at_random_points_apply_every_event_exactly_once(
    servers: FaultServers, tmp_path: Path
) -> None:
    rng = random.Random(20_240_917)
    pool = await create_pool(servers.database_url)
    client = redis.Redis.from_url(servers.redis_url)
    crew = Crew(environment(servers), tmp_path, rng)
    supervising: asyncio.Task[None] | None = None
    try:
        catalog = await load_catalog(pool)
        orgs = await create_organizations(pool, 4)
        mailbox = Mailbox(client, PARTITIONS)
        grants = dict.fromkeys(orgs, GRANT)
        await mailbox.send(
            [Command(Envelope(uuid.uuid4(), org, "grant", datetime.now(UTC)), GrantCredits(GRANT)) for org in orgs]
        )
        supervising = asyncio.create_task(crew.run())

        # Each send is a fresh envelope, as a caller's retry is; some keys are sent twice, in the
        # same chunk (likely one batch) or a few chunks later (after the first was applied).
        usages: dict[str, Usage] = {}
        sends: list[list[Usage]] = [[] for _ in range(USAGE_EVENTS // CHUNK + 10)]
        for n in range(USAGE_EVENTS):
            usage = random_usage(rng, orgs, f"use-{n}")
            usages[usage.key] = usage
            chunk = n // CHUNK
            sends[chunk].append(usage)
            if rng.random() < 0.03:
                sends[chunk].append(usage)
            elif rng.random() < 0.03:
                sends[chunk + rng.randint(1, 10)].append(usage)

        started = time.monotonic()
        for batch in filter(None, sends):
            await mailbox.send(usage_commands(batch))
            await asyncio.sleep(0.07)  # a steady stream over ~10 s, not one burst
        # Keep the stream flowing until every failpoint has fired (a failpoint fires only in a
        # worker that is applying something).
        extra = itertools.count()
        while not crew.quota_met() and time.monotonic() - started < 60:
            batch = [random_usage(rng, orgs, f"extra-{next(extra)}") for _ in range(5)]
            usages.update((u.key, u) for u in batch)
            await mailbox.send(usage_commands(batch))
            await asyncio.sleep(0.1)
        assert crew.quota_met(), crew.summary()
        # From here on workers are replaced by unarmed ones, so the backlog drains.
        crew.armed = crew.killing = False

        async def drained() -> bool:
            return await usage_journaled(pool) == len(usages) and await nothing_pending(client)

        async def explain() -> str:
            return f"{crew.summary()}\n{await stream_report(client)}"

        await eventually(drained, 60, f"all {len(usages)} usage events applied and acknowledged", explain=explain)
        supervising.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervising
        supervising = None
        crashes = [f"{w.log_path.name} exited {w.returncode}:\n{w.log_tail()}" for w in crew.crashes()]
        assert crashes == [], crew.summary()
        # Stopped before it installed its handlers, a worker dies of the SIGTERM itself.
        assert set(crew.stop()) <= {0, -signal.SIGTERM}
        print(crew.summary())

        await assert_ledger_exact(pool, client, usages, grants, catalog)
    finally:
        if supervising is not None:
            supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervising
        crew.stop()
        await client.aclose()
        await pool.close()


# --- Redis crashed and PostgreSQL restarted under API load ----------------------------------------

_RECORD_USAGE = """
mutation($input: RecordUsageInput!) { recordUsage(input: $input) { status creditsCharged } }
"""
_GRANT = """
mutation($input: GrantCreditsInput!) { grantCredits(input: $input) { status } }
"""
# Nothing of our internals may reach a client.
_INTERNALS = ("Traceback", 'File "', "asyncpg", "redis.", "SELECT", "INSERT", "Exception", "Error:", "errno")
CLIENTS = 6
# Longer than a lease (1 s here): the workers' leases lapse while Redis is down.
OUTAGE_S = 1.5


@dataclass
class Load:
    """Callers sending recordUsage continuously, half acknowledged QUEUED and half APPLIED; each
    response is filed under the phase of the outage it arrived in."""

    http: httpx.AsyncClient
    orgs: list[UUID]
    rng: random.Random
    phase: str = "warm-up"
    running: bool = True
    usages: dict[str, Usage] = field(default_factory=dict)
    failed: dict[str, tuple[Usage, str]] = field(default_factory=dict)  # key -> (usage, ack)
    # (phase, outcome): outcome is "QUEUED ok", "APPLIED ok" or an error code.
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)

    async def record(self, usage: Usage, ack: str) -> str:
        """Send one recordUsage; return "ok" or the error's (retryable) code."""
        variables = {
            "input": {
                "organizationId": str(usage.org),
                "product": usage.product,
                "quantity": str(usage.quantity),
                "idempotencyKey": usage.key,
                "ack": ack,
            }
        }
        try:
            response = await self.http.post("/graphql", json={"query": _RECORD_USAGE, "variables": variables})
        except httpx.TransportError as failure:
            self.bad.append(f"{usage.key}: no HTTP answer: {failure!r}")
            return "transport"
        if response.status_code == 503 and response.json()["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}:
            return "UNAVAILABLE"  # authentication could not reach PostgreSQL
        if response.status_code != 200 or any(text in response.text for text in _INTERNALS):
            self.bad.append(f"{usage.key}: HTTP {response.status_code}: {response.text[:500]}")
            return "bad"
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            (error,) = body["errors"]
            code = (error.get("extensions") or {}).get("code")
            if code not in RETRYABLE or set(error["extensions"]) != {"code"}:
                self.bad.append(f"{usage.key} ({self.phase}): {body}")
                return "bad"
            return str(code)
        outcome = body["data"]["recordUsage"]
        wanted = "QUEUED" if ack == "QUEUED" else "ACCEPTED"
        if outcome["status"] != wanted:
            self.bad.append(f"{usage.key}: {outcome}")
            return "bad"
        return "ok"

    async def caller(self, number: int) -> None:
        for n in itertools.count():
            if not self.running:
                return
            usage = random_usage(self.rng, self.orgs, f"caller-{number}-{n}")
            ack = "QUEUED" if n % 2 else "APPLIED"
            self.usages[usage.key] = usage
            answer = await self.record(usage, ack)
            if answer == "ok":
                self.seen[self.phase, f"{ack} ok"] += 1
            else:
                self.seen[self.phase, answer] += 1
                self.failed[usage.key] = (usage, ack)
                await asyncio.sleep(0.02)  # a real client backs off a little

    def count(self, phase: str, *outcomes: str) -> int:
        return sum(self.seen[phase, outcome] for outcome in outcomes)

    async def until(self, phase: str, timeout_s: float, **at_least: int) -> None:
        """Wait for responses in `phase`: errors=N retryable errors, queued/applied=N successes."""
        wanted = {"errors": tuple(RETRYABLE), "queued": ("QUEUED ok",), "applied": ("APPLIED ok",)}

        async def seen_enough() -> bool:
            assert self.bad == [], self.bad
            return all(self.count(phase, *wanted[name]) >= n for name, n in at_least.items())

        await eventually(seen_enough, timeout_s, f"{at_least} in phase {phase}: {dict(self.seen)}", 0.02)

    async def retry_failed(self, timeout_s: float) -> None:
        """After recovery, each failed request again under its key, until the ledger accepts it."""
        deadline = time.monotonic() + timeout_s
        for usage, ack in self.failed.values():
            while (answer := await self.record(usage, ack)) != "ok":
                assert answer in RETRYABLE and time.monotonic() < deadline, (usage, answer, self.bad)
                await asyncio.sleep(0.1)


async def test_redis_crash_and_postgres_restart_under_load_lose_nothing(servers: FaultServers, tmp_path: Path) -> None:
    env = environment(servers)
    port = _free_port()
    processes = [LedgerProcess("ledger-worker", tmp_path / f"worker-{i}.log", env) for i in range(2)]
    admin_key = new_key()
    api_env = env | {
        "CREDIT_LEDGER_PORT": str(port),
        "CREDIT_LEDGER_GRAPHIQL": "false",
        "CREDIT_LEDGER_ADMIN_KEY": admin_key,
    }
    processes.append(LedgerProcess("api", tmp_path / "api.log", api_env))
    callers: list[asyncio.Task[None]] = []
    try:
        pool = await create_pool(servers.database_url)
        try:
            catalog = await load_catalog(pool)
            orgs = await create_organizations(pool, 3)
        finally:
            await pool.close()  # its connections would not survive the restart below
        headers = {"authorization": f"Bearer {admin_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await eventually(ready, 60, "the API is ready")
            for org in orgs:
                grant = {"organizationId": str(org), "amount": format_credits(GRANT), "idempotencyKey": "grant"}
                response = await http.post("/graphql", json={"query": _GRANT, "variables": {"input": grant}})
                assert response.json() == {"data": {"grantCredits": {"status": "ACCEPTED"}}}

            load = Load(http, orgs, random.Random(7))
            callers = [asyncio.create_task(load.caller(n)) for n in range(CLIENTS)]
            await load.until("warm-up", 30, queued=20, applied=20)

            load.phase = "redis down"
            servers.kill_redis()
            back_at = time.monotonic() + OUTAGE_S
            await load.until("redis down", 30, errors=10)
            await asyncio.sleep(back_at - time.monotonic())
            await asyncio.to_thread(servers.start_redis)
            # Both acks succeed again: the queue takes commands and results reach their callers.
            load.phase = "redis back"
            await load.until("redis back", 60, queued=20, applied=20)

            load.phase = "postgres down"
            await asyncio.to_thread(servers.stop_postgres)
            back_at = time.monotonic() + OUTAGE_S
            await load.until("postgres down", 30, errors=10)
            await asyncio.sleep(back_at - time.monotonic())
            await asyncio.to_thread(servers.start_postgres)
            load.phase = "postgres back"
            await load.until("postgres back", 60, queued=20, applied=20)

            load.running = False
            await asyncio.gather(*callers)
            assert load.bad == []
            await load.retry_failed(60)
            assert load.bad == []

        # The workers and the API rode out both outages (a worker that gives up on an error it
        # should retry exits here).
        exits = {p.log_path.name: p.returncode for p in processes if p.returncode is not None}
        assert exits == {}, "\n\n".join(p.log_tail() for p in processes if p.returncode is not None)

        pool = await create_pool(servers.database_url)
        client = redis.Redis.from_url(servers.redis_url)
        try:

            async def drained() -> bool:
                return await usage_journaled(pool) == len(load.usages) and await nothing_pending(client)

            await eventually(
                drained, 60, f"all {len(load.usages)} usage events applied", explain=lambda: stream_report(client)
            )
            await assert_ledger_exact(pool, client, load.usages, dict.fromkeys(orgs, GRANT), catalog)
        finally:
            await client.aclose()
            await pool.close()
        print(f"{len(load.usages)} requests, {len(load.failed)} retried after recovery: {dict(load.seen)}")
    finally:
        for task in callers:
            task.cancel()
        for process in processes:
            process.stop()


# --- a takeover while PostgreSQL is down ---------------------------------------------------------


async def test_partitions_taken_over_while_postgres_is_down_are_applied_once_it_is_back(
    servers: FaultServers, tmp_path: Path
) -> None:
    """A worker dies during a PostgreSQL outage; the survivor wins its leases but cannot claim the
    partitions' fences until PostgreSQL is back. It must still adopt them then."""
    pool = await create_pool(servers.database_url)
    client = redis.Redis.from_url(servers.redis_url)
    env = environment(servers)
    workers = [LedgerProcess("ledger-worker", tmp_path / f"worker-{i}.log", env) for i in range(2)]
    try:
        catalog = await load_catalog(pool)
        orgs: list[UUID] = []
        while {keys.partition_of(org, PARTITIONS) for org in orgs} != set(range(PARTITIONS)):
            orgs += await create_organizations(pool, 1)
        mailbox = Mailbox(client, PARTITIONS)
        now = datetime.now(UTC)
        await mailbox.send([Command(Envelope(uuid.uuid4(), org, "grant", now), GrantCredits(GRANT)) for org in orgs])

        async def owners() -> list[bytes | None]:
            found: list[bytes | None] = await client.mget([keys.lease(p) for p in range(PARTITIONS)])
            return found

        async def shared() -> bool:
            return len(set(await owners()) - {None}) == 2

        async def grants_applied() -> bool:
            count: int = await pool.fetchval("SELECT count(*) FROM ledger_transactions")
            return count == len(orgs)

        await eventually(grants_applied, 30, "the grants applied")
        await eventually(shared, 30, "both workers own partitions")
        await pool.close()

        await asyncio.to_thread(servers.stop_postgres)
        doomed, survivor = workers
        doomed.kill()

        async def one_owner() -> bool:
            current = await owners()
            return None not in current and len(set(current)) == 1

        # The dead worker's leases lapse and the survivor takes them, all while PostgreSQL is down.
        await eventually(one_owner, 30, "the survivor holds every partition's lease")
        usages = {f"use-{org}": Usage(org, f"use-{org}", "sms.message", Decimal(3)) for org in orgs}
        await mailbox.send(usage_commands(usages.values()))
        await asyncio.to_thread(servers.start_postgres)
        pool = await create_pool(servers.database_url)

        async def drained() -> bool:
            return await usage_journaled(pool) == len(usages) and await nothing_pending(client)

        await eventually(drained, 30, "usage in every partition applied", explain=lambda: stream_report(client))
        assert survivor.returncode is None, survivor.log_tail()
        await assert_ledger_exact(pool, client, usages, dict.fromkeys(orgs, GRANT), catalog)
    finally:
        for worker in workers:
            worker.stop()
        await client.aclose()
        await pool.close()
