"""Load straight into the ledger's streams, and the drain rate of the ledger workers (M1, M2)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as redis

from ledger.core.commands import Command
from ledger.stream import keys
from ledger.stream.mailbox import Mailbox
from tests.bench.cpu import CpuMeter, CpuSample, between
from tests.bench.population import usage_commands
from tests.bench.servers import BenchWorld

poll_interval_s = 0.05
send_chunk = 1_000
send_concurrency = 4
window = (0.10, 0.90)
DRAIN_METHOD = (
    "with no worker running, the partitions are pre-filled with N RecordUsage commands through the Mailbox; "
    "then the worker processes start and the backlog (the sum of XLEN over the partitions: a worker "
    f"acknowledges an entry only after its PostgreSQL commit, then trims it) is polled every {poll_interval_s} s. "
    f"The rate is taken over the steady window from {window[0]:.0%} to {window[1]:.0%} of N applied "
    "(overall_events_per_s: from the workers' start, startup included); afterwards exactly N new journal "
    "transactions must exist (each applied once, none lost). CPU per event: every service process's CPU "
    "over the same steady window, divided by the events applied in it"
)


async def send_all(client: redis.Redis, partition_count: int, commands: Iterable[Command]) -> int:
    """Append every command through the real Mailbox (bounded-backlog script), pipelined in chunks."""
    mailbox = Mailbox(client, partition_count)
    chunks = batched(commands, send_chunk)
    sent = 0

    async def sender() -> None:
        nonlocal sent
        for chunk in chunks:  # shared iterator: each chunk goes to exactly one sender
            await mailbox.send(chunk)
            sent += len(chunk)

    await asyncio.gather(*(sender() for _ in range(send_concurrency)))
    return sent


def batched(items: Iterable[Command], size: int) -> Iterator[list[Command]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def backlog(client: redis.Redis, partition_count: int) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(partition_count):
            pipe.xlen(keys.stream(partition))
        return sum(await pipe.execute())


async def transaction_count(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM ledger_transactions")
    return count


async def lease_owners(client: redis.Redis, partition_count: int) -> dict[str, int]:
    """How many partitions each worker holds (a worker that holds none does no work)."""
    owners = await client.mget([keys.lease(p) for p in range(partition_count)])
    return dict(Counter(owner.decode() if owner else "(free)" for owner in owners))


async def wait_applied(world: BenchWorld, pool: asyncpg.Pool, expected_total: int, timeout_s: float) -> int:
    """Wait until the journal holds `expected_total` transactions; return the count seen last."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = await transaction_count(pool)
        if count >= expected_total or time.monotonic() > deadline:
            return count
        world.check_alive()
        await asyncio.sleep(0.25)


@dataclass
class DrainResult:
    events: int
    events_per_s: float  # over the steady window
    overall_events_per_s: float  # from the workers' start to the last entry applied, startup included
    window_s: float
    applied_exactly: bool
    new_transactions: int
    lease_owners: dict[str, int]
    cpu: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        cpu = {"cpu": self.cpu} if self.cpu is not None else {}
        return {
            "value": round(self.events_per_s),
            "unit": "events/s",
            "events": self.events,
            "overall_events_per_s": round(self.overall_events_per_s),
            "window_s": round(self.window_s, 3),
            "new_transactions": self.new_transactions,
            "applied_exactly_once": self.applied_exactly,
            "partitions_per_worker": self.lease_owners,
            **cpu,
        }


async def measure_drain(
    world: BenchWorld,
    client: redis.Redis,
    pool: asyncpg.Pool,
    organizations: Sequence[UUID],
    workers: int,
    prefix: str,
    timeout_s: float,
    meter: CpuMeter | None = None,
) -> DrainResult:
    """Pre-fill one RecordUsage per entry of `organizations`, then time the workers draining them
    (and, with a `meter`, their CPU and the servers' over the same window). Leaves the workers running."""
    assert not world.workers(), "the streams are pre-filled with no worker running"
    partition_count = world.settings.partition_count
    events = len(organizations)
    before = await transaction_count(pool)
    await send_all(client, partition_count, usage_commands(organizations, random.Random(prefix), prefix))
    # Each partition keeps its last acknowledged entry: a backlog this small is all applied, or nearly.
    start_backlog = await backlog(client, partition_count)

    started = time.monotonic()
    world.start_workers(workers)
    marks: dict[float, tuple[float, int]] = {}
    samples: dict[float, CpuSample] = {}
    applied = 0
    while applied < events:
        await asyncio.sleep(poll_interval_s)
        now = time.monotonic()
        remaining = await backlog(client, partition_count)
        applied = min(events, start_backlog - remaining)
        for fraction in window:
            if fraction not in marks and applied >= fraction * events:
                marks[fraction] = (now, applied)
                if meter is not None:
                    samples[fraction] = meter.sample()
        if now - started > timeout_s:
            raise TimeoutError(f"{applied} of {events} applied after {timeout_s}s")
        world.check_alive()
        if remaining <= partition_count:
            break  # the rest is within the kept entries' uncertainty: counted exactly below
    total = await wait_applied(world, pool, before + events, timeout_s=30)
    finished = time.monotonic()
    if meter is not None and window[1] not in samples:  # the window then ends with the last one applied
        samples[window[1]] = meter.sample()
    (t0, n0), (t1, n1) = marks[window[0]], marks.get(window[1], (finished, events))
    cpu = between(samples[window[0]], samples[window[1]], n1 - n0, "event") if meter is not None else None
    window_s = t1 - t0
    rate = (n1 - n0) / window_s if window_s > 0 else float("nan")
    owners = await lease_owners(client, partition_count)
    return DrainResult(
        events=events,
        events_per_s=rate,
        overall_events_per_s=events / (finished - started),
        window_s=window_s,
        applied_exactly=total - before == events,
        new_transactions=total - before,
        lease_owners=owners,
        cpu=cpu,
    )


class Feeder:
    """Open-loop feed into the streams at a fixed rate, in small chunks every `tick_s` (for M4)."""

    tick_s = 0.01

    def __init__(
        self, client: redis.Redis, partition_count: int, choose: Callable[[random.Random, int], list[UUID]], rate: float
    ) -> None:
        self._mailbox = Mailbox(client, partition_count)
        self._choose = choose
        self._rate = rate
        self._rng = random.Random(11)
        self.sent = 0
        self.late_ticks = 0

    async def run(self, duration_s: float, prefix: str) -> None:
        started = time.monotonic()
        tick = 0
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(elapsed * self._rate) - self.sent
            if due > 0:
                orgs = self._choose(self._rng, due)
                rng = random.Random(f"{prefix}-{self.sent}")
                commands = list(usage_commands(orgs, rng, f"{prefix}-{self.sent}"))
                await self._mailbox.send(commands)
                self.sent += due
            tick += 1
            delay = started + tick * self.tick_s - time.monotonic()
            if delay < 0:
                self.late_ticks += 1
            await asyncio.sleep(max(0.0, delay))
