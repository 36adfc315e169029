"""Health that tells the truth, and a supervisor that brings back what dies.

The health checks run against the suite's Redis. The fault test runs the real `credit-ledger serve`
(embedded servers in a temp state directory, two ledger workers), drives recordUsage through the
API with idempotency keys while SIGKILLing a ledger worker every 1-3 s, and the embedded Redis and
PostgreSQL once each; nobody restarts anything by hand. Every acknowledged command must be
journaled exactly once, the ledger never long without a live worker, and the journal must verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from ledger.core.money import format_credits
from ledger.directory.api_keys import new_key
from ledger.runtime.settings import Settings
from ledger.store.balances import balances_by_orgs
from ledger.store.pool import create_pool
from ledger.stream import keys
from ledger.stream.health import check_ledger_health, readiness
from tests.conftest import _free_port, repository_root
from tests.fault_servers import eventually, load_catalog
from tests.test_faults import GRANT, RETRYABLE, Usage, expected_totals, random_usage

# --- the health checks -------------------------------------------------------------------------


async def test_health_names_unowned_and_stalled_partitions(redis_client: redis.Redis, settings: Settings) -> None:
    count = settings.partition_count
    assert (await check_ledger_health(redis_client, count)).healthy
    stream = keys.stream(3)
    await redis_client.xadd(stream, {"c": "x"})
    health = await check_ledger_health(redis_client, count)
    assert [(u.partition, u.pending, u.undelivered) for u in health.unowned] == [(3, 0, True)]
    assert not health.stalled

    await redis_client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0")
    await redis_client.set(keys.lease(3), "worker-a", px=10_000)
    assert (await check_ledger_health(redis_client, count)).healthy  # held, and nothing delivered yet

    await redis_client.xreadgroup(keys.CONSUMER_GROUP, "worker-a", {stream: ">"})
    assert (await check_ledger_health(redis_client, count)).healthy  # delivered just now
    health = await check_ledger_health(redis_client, count, stall_max_ms=0)
    assert [(s.partition, s.pending) for s in health.stalled] == [(3, 1)]
    assert "partition 3 is stalled" in health.problems()[0]

    await redis_client.delete(keys.lease(3))
    health = await check_ledger_health(redis_client, count)
    assert [(u.partition, u.pending, u.undelivered) for u in health.unowned] == [(3, 1, False)]


async def test_readiness_fails_naming_the_check(
    pool: asyncpg.Pool, redis_client: redis.Redis, settings: Settings
) -> None:
    ready, body = await readiness(pool, redis_client, settings)
    assert (ready, body) == (True, {"ready": True, "postgres": "ok", "redis": "ok"})
    await redis_client.xadd(keys.stream(5), {"c": "x"})
    ready, body = await readiness(pool, redis_client, settings)
    assert not ready
    assert body["failing"] == ["unowned_partitions"]
    assert body["unowned_partitions"] == [{"partition": 5, "pending": 0, "undelivered": True}]
    assert isinstance(body["checked_at_ms"], int)


# --- serve under fire --------------------------------------------------------------------------

CHAOS_S = 55
WORKERS = 2
CALLERS = 4
KILL_INTERVAL_S = (1.0, 3.0)
REDIS_KILL_AT_S = 15
POSTGRES_KILL_AT_S = 35
# The longest the ledger may be without a live worker process: a restart back-off (at most 2 s)
# and the supervisor's poll, with room for a loaded machine.
WORKERLESS_S_MAX = 4.0
_RECORD_USAGE = "mutation($input: RecordUsageInput!) { recordUsage(input: $input) { status } }"
_GRANT = "mutation($input: GrantCreditsInput!) { grantCredits(input: $input) { status } }"
_CREATE = "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }"


def _children(parent: int, role: str) -> list[int]:
    """Live (not zombie) `credit-ledger <role>` processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and role.encode() in command:
            found.append(int(entry.name))
    return found


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    state_dir: Path
    port: int
    log_path: Path
    admin_key: str

    def urls(self) -> dict[str, str]:
        record: dict[str, str] = json.loads((self.state_dir / "servers.json").read_text())
        return record

    def redis_pid(self) -> int:
        return int((self.state_dir / "redis" / "redis.pid").read_text())

    def postgres_pid(self) -> int:
        return int((self.state_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(tmp_path: Path) -> Any:
    port = _free_port()
    admin_key = new_key()
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("CREDIT_LEDGER_")
    }
    environment |= {
        "CREDIT_LEDGER_STATE_DIR": str(tmp_path / "state"),
        "CREDIT_LEDGER_PORT": str(port),
        "CREDIT_LEDGER_ADMIN_KEY": admin_key,
        "CREDIT_LEDGER_WORKERS": str(WORKERS),
        "CREDIT_LEDGER_PARTITIONS": "8",
        # Takeovers in a second rather than five.
        "CREDIT_LEDGER_LEASE_TTL_MS": "1000",
        "CREDIT_LEDGER_GRAPHIQL": "false",
        "CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION": "0",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "graphql_api.shell.cli", "serve"],
            cwd=repository_root(),
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    serve = Serve(process, tmp_path / "state", port, log_path, admin_key)
    try:
        yield serve
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Callers:
    """recordUsage with ack APPLIED, each key retried (same key) until the ledger applies it."""

    http: httpx.AsyncClient
    orgs: list[UUID]
    rng: random.Random
    running: bool = True
    acknowledged: dict[str, Usage] = field(default_factory=dict)
    retries: int = 0
    bad: list[str] = field(default_factory=list)

    async def send(self, usage: Usage) -> str:
        variables = {
            "input": {
                "organizationId": str(usage.org),
                "product": usage.product,
                "quantity": str(usage.quantity),
                "idempotencyKey": usage.key,
                "ack": "APPLIED",
            }
        }
        try:
            response = await self.http.post("/graphql", json={"query": _RECORD_USAGE, "variables": variables})
        except httpx.TransportError:
            return "transport"
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            code = (body["errors"][0].get("extensions") or {}).get("code")
            if code not in RETRYABLE:
                self.bad.append(f"{usage.key}: HTTP {response.status_code} {body}")
            return str(code)
        status = str(body["data"]["recordUsage"]["status"])
        if status != "ACCEPTED":
            self.bad.append(f"{usage.key}: {body}")
        return status

    async def caller(self, number: int) -> None:
        n = 0
        while self.running:
            usage = random_usage(self.rng, self.orgs, f"caller-{number}-{n}")
            n += 1
            # A key once sent is retried until applied, even past the end of the load: a caller that
            # gave up would leave us not knowing whether it was applied.
            while (answer := await self.send(usage)) != "ACCEPTED" and not self.bad:
                self.retries += 1
                await asyncio.sleep(0.05)
            if answer == "ACCEPTED":
                self.acknowledged[usage.key] = usage


@dataclass
class Chaos:
    """SIGKILLs ledger workers every 1-3 s, Redis and PostgreSQL once each, and watches how long
    the supervisor ever leaves the ledger without a live worker process."""

    serve: Serve
    rng: random.Random
    worker_kills: int = 0
    killed: list[str] = field(default_factory=list)
    longest_workerless_s: float = 0.0

    async def kill_workers(self, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(*KILL_INTERVAL_S))
            alive = _children(self.serve.process.pid, "ledger-worker")
            if alive:
                os.kill(self.rng.choice(alive), signal.SIGKILL)
                self.worker_kills += 1

    async def kill_server(self, at: float, name: str) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        pid = self.serve.redis_pid() if name == "redis" else self.serve.postgres_pid()
        os.kill(pid, signal.SIGKILL)
        self.killed.append(f"{name} {pid}")

    async def watch_workers(self, until: float) -> None:
        workerless_since: float | None = None
        while time.monotonic() < until:
            now = time.monotonic()
            if _children(self.serve.process.pid, "ledger-worker"):
                workerless_since = None
            elif workerless_since is None:
                workerless_since = now
            else:
                self.longest_workerless_s = max(self.longest_workerless_s, now - workerless_since)
            await asyncio.sleep(0.05)


async def _ready(http: httpx.AsyncClient) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return (await http.get("/readyz")).status_code == 200
    return False


async def _setup(http: httpx.AsyncClient, database_url: str, count: int) -> list[UUID]:
    pool = await create_pool(database_url)
    try:
        await load_catalog(pool)
    finally:
        await pool.close()  # its connections would not survive PostgreSQL's crash
    orgs = []
    for n in range(count):
        body = (await http.post("/graphql", json={"query": _CREATE, "variables": {"input": {"name": f"o{n}"}}})).json()
        orgs.append(UUID(body["data"]["createOrganization"]["id"]))
        grant = {"organizationId": str(orgs[-1]), "amount": format_credits(GRANT), "idempotencyKey": "grant"}
        body = (await http.post("/graphql", json={"query": _GRANT, "variables": {"input": grant}})).json()
        assert body == {"data": {"grantCredits": {"status": "ACCEPTED"}}}, body
    return orgs


async def _assert_journal(database_url: str, callers: Callers, orgs: list[UUID]) -> None:
    """Every acknowledged key journaled once and accepted; nothing journaled that was not sent."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT idempotency_key, status, count(*) OVER (PARTITION BY org_id, idempotency_key) AS copies"
            " FROM ledger_transactions WHERE command_type = 'record_usage'"
        )
        journaled = {row["idempotency_key"] for row in rows}
        assert journaled == set(callers.acknowledged), journaled ^ set(callers.acknowledged)
        assert len(rows) == len(callers.acknowledged)
        assert {row["copies"] for row in rows} == {1}
        assert {row["status"] for row in rows} == {"accepted"}
    finally:
        await connection.close()
    pool = await create_pool(database_url)
    try:
        catalog = await load_catalog(pool)
        balances = await balances_by_orgs(pool, orgs, datetime.now(UTC))
    finally:
        await pool.close()
    expected = expected_totals(dict.fromkeys(orgs, GRANT), callers.acknowledged, catalog)
    assert {org: balance.total for org, balance in balances.items()} == expected


def _verify(serve: Serve) -> subprocess.CompletedProcess[str]:
    urls = serve.urls()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    environment |= {"DATABASE_URL": urls["database_url"], "REDIS_URL": urls["redis_url"]}
    return subprocess.run(
        [sys.executable, "-m", "graphql_api.shell.cli", "verify"],
        cwd=repository_root(),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_serve_brings_back_killed_workers_redis_and_postgres(tmp_path: Path) -> None:
    rng = random.Random(20_251_202)
    with serving(tmp_path) as serve:
        headers = {"authorization": f"Bearer {serve.admin_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{serve.port}", timeout=30, headers=headers) as http:
            await eventually(lambda: _ready(http), 60, "serve is ready", interval_s=0.2)
            orgs = await _setup(http, serve.urls()["database_url"], 3)
            callers = Callers(http, orgs, rng)
            chaos = Chaos(serve, random.Random(rng.random()))
            started = time.monotonic()
            until = started + CHAOS_S
            tasks = [asyncio.create_task(callers.caller(n)) for n in range(CALLERS)]
            mayhem = [
                asyncio.create_task(chaos.kill_workers(until)),
                asyncio.create_task(chaos.kill_server(started + REDIS_KILL_AT_S, "redis")),
                asyncio.create_task(chaos.kill_server(started + POSTGRES_KILL_AT_S, "postgres")),
                asyncio.create_task(chaos.watch_workers(until)),
            ]
            try:
                await asyncio.gather(*mayhem)
                callers.running = False
                await asyncio.wait_for(asyncio.gather(*tasks), 60)
            finally:
                for task in [*tasks, *mayhem]:
                    task.cancel()
            assert callers.bad == [], callers.bad[:5]
            # Back without a hand restart, and healthy: every partition held and moving.
            await eventually(lambda: _ready(http), 30, "serve is ready again", interval_s=0.2)
            readiness_body = (await http.get("/readyz")).json()

        log = serve.log()
        assert "embedded Redis (pid" in log and "embedded Redis is back" in log, log[-3000:]
        assert "embedded PostgreSQL (pid" in log and "embedded PostgreSQL is back" in log, log[-3000:]
        assert "was killed by SIGKILL; restarting in" in log
        assert serve.process.poll() is None, "serve itself died"
        await _assert_journal(serve.urls()["database_url"], callers, orgs)
        verified = _verify(serve)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert chaos.longest_workerless_s < WORKERLESS_S_MAX, chaos.longest_workerless_s

        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(60) == 0
        assert "stopped the embedded PostgreSQL and Redis" in serve.log()
    print(
        f"{len(callers.acknowledged)} usage events acknowledged ({callers.retries} retries), "
        f"{chaos.worker_kills} workers SIGKILLed, killed {chaos.killed}; "
        f"longest without a live worker {chaos.longest_workerless_s:.2f} s; ready: {readiness_body['ready']}"
    )
