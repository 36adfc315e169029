"""Baselines on the same servers: pgbench (B1, B2) and pipelined XADD from one Python process (B3)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as redis

from ledger.core.wire import encode
from tests.bench.population import make_population, usage_commands
from tests.bench.servers import postgres_bin

BALANCE_ROWS = 10_000
PGBENCH_CLIENTS = 8
PGBENCH_THREADS = 2
XADD_CONNECTIONS = 8
XADD_PIPELINE = 100
XADD_STREAMS = 64

_SPREAD = "\\set id random(1, {rows})\nUPDATE bench_balances SET amount = amount - 1 WHERE org = :id;\n"
_ONE_ROW = "UPDATE bench_balances SET amount = amount - 1 WHERE org = 1;\n"
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)


@dataclass
class PgbenchResult:
    tps: float
    latency_average_ms: float | None
    command: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": round(self.tps),
            "unit": "transactions/s",
            "latency_average_ms": self.latency_average_ms,
            "command": self.command,
        }


async def prepare_balances(pool: asyncpg.Pool) -> None:
    """pgbench's own table, next to (never part of) the ledger's."""
    await pool.execute(
        "DROP TABLE IF EXISTS bench_balances;"
        "CREATE TABLE bench_balances (org integer PRIMARY KEY, amount bigint NOT NULL);"
        f"INSERT INTO bench_balances SELECT g, 1000000000 FROM generate_series(1, {BALANCE_ROWS}) g;"
    )
    await pool.execute("VACUUM ANALYZE bench_balances")


async def pgbench(database_url: str, directory: Path, *, one_row: bool, duration_s: int) -> PgbenchResult:
    script = directory / ("pgbench-one-row.sql" if one_row else "pgbench-spread.sql")
    script.write_text(_ONE_ROW if one_row else _SPREAD.format(rows=BALANCE_ROWS))
    arguments = [
        "-n", "-M", "prepared", "-c", str(PGBENCH_CLIENTS), "-j", str(PGBENCH_THREADS),
        "-T", str(duration_s), "-f", str(script),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(postgres_bin("pgbench")),
        *arguments,
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    tps = _TPS.search(output)
    if process.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed ({process.returncode}):\n{output}")
    latency = _LATENCY.search(output)
    return PgbenchResult(
        float(tps.group(1)),
        float(latency.group(1)) if latency else None,
        "pgbench " + " ".join(arguments[:-2]) + f" -f <{'one row' if one_row else 'random row of 10k'}>",
    )


async def pipelined_xadd(redis_url: str, duration_s: float) -> dict[str, Any]:
    """B3: XADD of real encoded usage commands, 100 per pipeline, on 8 connections, for `duration_s`."""
    population = make_population(100)
    payloads = [encode(c) for c in usage_commands(population.organizations, random.Random(3), "b3")]
    clients = [redis.Redis.from_url(redis_url, max_connections=1) for _ in range(XADD_CONNECTIONS)]
    streams = [f"bench:xadd:{{{p}}}" for p in range(XADD_STREAMS)]
    added = 0
    deadline = time.monotonic() + duration_s

    async def connection(client: redis.Redis, offset: int) -> None:
        nonlocal added
        turn = offset
        while time.monotonic() < deadline:
            async with client.pipeline(transaction=False) as pipe:
                for i in range(XADD_PIPELINE):
                    pipe.xadd(streams[(turn + i) % XADD_STREAMS], {"c": payloads[(turn + i) % len(payloads)]})
                await pipe.execute()
            added += XADD_PIPELINE
            turn += XADD_PIPELINE

    started = time.monotonic()
    try:
        await asyncio.gather(*(connection(client, i * 7) for i, client in enumerate(clients)))
        elapsed = time.monotonic() - started
        await clients[0].delete(*streams)
    finally:
        for client in clients:
            await client.aclose()
    return {
        "value": round(added / elapsed),
        "unit": "entries/s",
        "entries": added,
        "payload_bytes": len(payloads[0]),
        "method": f"one process, {XADD_CONNECTIONS} connections, {XADD_PIPELINE} XADD per pipeline, "
        f"over {XADD_STREAMS} streams",
    }
