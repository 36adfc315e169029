"""Fixtures: one PostgreSQL and one Redis per test run (embedded, or TEST_DATABASE_URL and
TEST_REDIS_URL when given), a clean database per test, and the real service on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
import uvicorn

from graphql_api.app import create_app
from graphql_api.shell.catalog import example_catalog
from ledger.billing.catalog import Catalog
from ledger.core.commands import Command, Envelope, Expire
from ledger.core.state import HoldStatus
from ledger.directory.api_keys import create_api_key
from ledger.runtime.servers import apply_migrations, servers
from ledger.runtime.settings import Settings
from ledger.store.catalog_versions import save_catalog
from ledger.store.pool import create_pool
from ledger.store.states import load_states
from ledger.store.verify import verify
from ledger.stream.worker import LedgerWorker
from tests.stripe_fake import FakeStripe, fake_stripe

# Tables the tests may write; emptied before each test.
_TABLES = (
    "ledger_postings", "credit_holds", "credit_quotes", "credit_lots", "ledger_settings", "spend_counters",
    "ledger_transactions", "alert_events", "invitations", "members", "api_keys", "teams", "products", "organizations",
    "partners", "catalog_rates", "catalog_entries", "billing_charges", "seat_changes", "period_facts",
    "plan_changes", "subscription_plans", "dunning", "invoice_lines", "invoices", "recharges", "auto_recharge",
    "invoice_overpayments",
    "stripe_cursors", "stripe_events", "refunds", "payments", "stripe_customers", "subscriptions",
)  # fmt: skip


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = Settings(
        database_url=os.environ.get("TEST_DATABASE_URL", ""),
        redis_url=os.environ.get("TEST_REDIS_URL", ""),
        state_dir=tmp_path_factory.mktemp("state"),
        partition_count=8,
        embedded_durable=False,
    )
    with servers(base) as resolved:
        asyncio.run(apply_migrations(resolved.database_url))
        yield resolved


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url)
    await pool.execute(f"TRUNCATE {', '.join(_TABLES)}")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def catalog(pool: asyncpg.Pool) -> Catalog:
    """The shipped example catalog (graphql_api/catalog.toml), saved as `catalog load` saves it."""
    loaded = example_catalog()
    async with pool.acquire() as connection:
        await save_catalog(connection, loaded)
    return loaded


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    settings: Settings
    url: str
    client: httpx.AsyncClient
    worker: LedgerWorker
    # A platform admin key: what `graphql` sends unless told otherwise.
    admin_key: str

    async def graphql(self, query: str, *, credentials: str | None = None, **variables: Any) -> dict[str, Any]:
        """Run a document as the admin, or with `credentials` (an API key or user token; "" for none)."""
        credentials = self.admin_key if credentials is None else credentials
        headers = {"authorization": f"Bearer {credentials}"} if credentials else {}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextlib.asynccontextmanager
async def running_worker(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[LedgerWorker]:
    client = redis.Redis.from_url(settings.redis_url)
    worker = LedgerWorker(pool, client, settings.partition_count)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()


@pytest.fixture
async def service(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: Catalog
) -> AsyncIterator[Service]:
    async with serving(settings, pool) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Service]:
    """The real service (API and one ledger worker) on a free port, with `settings`."""
    port = _free_port()
    app_settings = replace(settings, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    _, admin_key = await create_api_key(pool, name="tests", scope="admin")
    async with running_worker(pool, settings) as worker, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield Service(app_settings, url, client, worker, admin_key)
    server.should_exit = True
    await task
    # Whatever a test did through the service, the journal must still account for every credit,
    # and what the worker kept warm must be what a fresh load from PostgreSQL gives.
    assert await verify(pool) == []
    await assert_warm_states_match_the_database(pool, worker)


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStripe]:
    with fake_stripe(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture
def stripe(stripe_server: FakeStripe) -> FakeStripe:
    """localstripe, emptied for this test."""
    stripe_server.flush()
    return stripe_server


WEBHOOK_SECRET = "whsec_" + "tests0webhook0secret0" * 2


@pytest.fixture
async def paying_service(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: Catalog, stripe: FakeStripe
) -> AsyncIterator[Service]:
    """The service paying through localstripe, whose webhooks it receives at `/stripe/webhook`."""
    async with serving(stripe.settings(settings, WEBHOOK_SECRET), pool) as running:
        stripe.register_webhook(f"{running.url}/stripe/webhook", WEBHOOK_SECRET)
        yield running


async def assert_warm_states_match_the_database(pool: asyncpg.Pool, worker: LedgerWorker) -> None:
    now = datetime.now(UTC)
    warm = dict(worker.warm._states)
    probes = [Command(Envelope(uuid.uuid4(), org, "probe", now), Expire(now)) for org in warm]
    async with pool.acquire() as connection:
        fresh = await load_states(connection, probes)
    for org, state in warm.items():
        loaded = fresh[org]
        assert {lot.id: lot for lot in state.lots} == {lot.id: lot for lot in loaded.lots}, org
        assert {i: h for i, h in state.holds.items() if h.status is HoldStatus.OPEN} == loaded.holds, org
        # Teams are created by the API, not the worker: a warm state may lack one created since it
        # loaded (a command naming it reloads the org), but never holds one that does not exist.
        assert state.teams <= loaded.teams, org
        names = ("policies", "budgets", "members", "rates", "kind_priorities", "alerts", "access", "storage_used_gb")
        for name in (*names, "credit_drawn"):
            assert getattr(state, name) == getattr(loaded, name), (org, name)
        assert {k: v for k, v in state.spend.items() if k in loaded.spend} == loaded.spend, org


def repository_root() -> Path:
    return Path(__file__).resolve().parent.parent
