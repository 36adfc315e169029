"""How far behind the ledger workers are: backlog and pending entries per partition.

Written to the Redis hash `ledger:health` for dashboards and alerts, and logged when it grows.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as redis

from ledger.stream import keys

log = logging.getLogger(__name__)

HEALTH_KEY = "ledger:health"
backlog_warning_count = 10_000


async def measure_backlog(client: redis.Redis, partition_count: int) -> dict[str, int]:
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(partition_count):
            pipe.xlen(keys.stream(partition))
        lengths = await pipe.execute()
    return {
        "stream_entries": sum(lengths),
        "busiest_partition_entries": max(lengths, default=0),
    }


async def record_ledger_health(ctx: dict[str, Any]) -> dict[str, int]:
    client: redis.Redis = ctx["redis"]
    figures = await measure_backlog(client, ctx["settings"].partition_count)
    await client.hset(HEALTH_KEY, mapping=figures)  # type: ignore[misc]
    if figures["busiest_partition_entries"] > backlog_warning_count:
        log.warning("ledger backlog is growing: %s", figures)
    return figures
