"""What fault tests may break without harming the rest of the suite: a PostgreSQL and a Redis of
their own on fixed ports (so a restarted server keeps its URL), and ledger processes started the way
an operator starts them (`credit-ledger ledger-worker`, `credit-ledger api`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from graphql_api.shell.catalog import example_catalog
from ledger.runtime.postgres_server import EmbeddedPostgres
from ledger.runtime.redis_server import EmbeddedRedis
from ledger.runtime.servers import apply_migrations
from ledger.store.catalog import Product, list_products
from ledger.store.catalog_versions import save_catalog
from ledger.stream import keys
from tests.conftest import _free_port, repository_root

PARTITIONS = 8
# Variables of ours a child must not inherit from whoever runs the tests.
_OWN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL")


@dataclass
class FaultServers:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    postgres_port: int
    redis_port: int

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/credit_ledger"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        # AOF with `appendfsync always` (EmbeddedRedis's settings): what Redis acknowledged survives.
        self.redis.start(self.redis_port)

    def kill_redis(self) -> None:
        """A crash, not a shutdown: Redis gets no chance to write anything more."""
        process = self.redis.process
        assert process is not None and process.poll() is None, "Redis is not running"
        process.kill()
        process.wait()
        self.redis.process = None

    def start_postgres(self) -> None:
        self.postgres.start(self.postgres_port)

    def stop_postgres(self) -> None:
        """A fast shutdown: sessions are ended mid-query, committed work is kept (the test servers
        run without fsync, so a crash could lose commits the OS had not written yet)."""
        self.postgres.stop()

    def stop(self) -> None:
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()


@contextlib.contextmanager
def fault_servers(directory: Path) -> Iterator[FaultServers]:
    servers = FaultServers(
        EmbeddedPostgres(directory / "postgres", durable=False),
        EmbeddedRedis(directory / "redis"),
        postgres_port=_free_port(),
        redis_port=_free_port(),
    )
    try:
        servers.start_postgres()
        servers.start_redis()
        asyncio.run(apply_migrations(servers.database_url))
        yield servers
    finally:
        servers.stop()


async def load_catalog(pool: asyncpg.Pool) -> dict[str, Product]:
    """Save the example catalog; its products as the registry shows them (with today's rates)."""
    async with pool.acquire() as connection:
        await save_catalog(connection, example_catalog())
    return {product.key: product for product in await list_products(pool)}


def environment(servers: FaultServers, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES and not k.startswith("CREDIT_LEDGER_")}
    return env | {
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "CREDIT_LEDGER_PARTITIONS": str(PARTITIONS),
        # Takeovers in a second rather than five (read by workers that support it).
        "CREDIT_LEDGER_LEASE_TTL_MS": "1000",
        **extra,
    }


@dataclass
class LedgerProcess:
    """One `credit-ledger <role>` process, its output in a log file."""

    role: str
    log_path: Path
    env: dict[str, str]
    failpoint: str | None = None  # the one failpoint armed in it, if any
    killed_by_us: bool = False
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graphql_api.shell.cli", self.role],
                cwd=repository_root(),  # the code under test, wherever the venv points
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.killed_by_us = True
            self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, as a supervisor stops a process; returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def died_by_sigkill(process: LedgerProcess) -> bool:
    return process.returncode == -signal.SIGKILL


async def eventually(
    check: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll until `check` holds; past the deadline, fail with `what` and what `explain` finds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            detail = await explain() if explain is not None else ""
            raise AssertionError(f"not within {timeout_s} s: {what}\n{detail}".rstrip())
        await asyncio.sleep(interval_s)


async def stream_report(client: redis.Redis) -> str:
    """Each partition's lease owner, pending entries and backlog: where a stuck ledger is stuck."""
    lines = []
    for partition in range(PARTITIONS):
        stream = keys.stream(partition)
        owner = await client.get(keys.lease(partition))
        pending = length = 0
        if await client.exists(stream):
            length = await client.xlen(stream)
            pending = (await client.xpending(stream, keys.CONSUMER_GROUP))["pending"]
        lines.append(f"partition {partition}: lease {owner!r}, {pending} pending, {length} in the stream")
    return "\n".join(lines)
