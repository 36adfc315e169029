"""M4's background load in a process of its own, so it never delays the measuring client's event loop:
`python -m tests.bench.feed REDIS_URL PARTITIONS ORGANIZATIONS RATE SECONDS` prints what it sent."""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as redis

from tests.bench.ledger_load import Feeder
from tests.bench.population import make_population


async def feed(redis_url: str, partition_count: int, organizations: int, rate: float, duration_s: float) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        feeder = Feeder(client, partition_count, make_population(organizations).zipf_choices, rate)
        await feeder.run(duration_s, "m4")
    finally:
        await client.aclose()
    print(json.dumps({"sent": feeder.sent, "late_ticks": feeder.late_ticks}), flush=True)


if __name__ == "__main__":
    url, partitions, organizations, rate, seconds = sys.argv[1:6]
    asyncio.run(feed(url, int(partitions), int(organizations), float(rate), float(seconds)))
