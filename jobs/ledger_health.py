"""How far behind the ledger workers are, and whether they are getting through at all: backlog per
partition, and partitions stalled or held by no worker (`ledger.stream.health`).

Written to the Redis hash `ledger:health` for dashboards and alerts, with the Redis time it was
checked at (`checked_at_ms`: a reader judges how stale it is), and logged, partition by partition,
while the ledger is unhealthy. /readyz does not read this hash: it checks afresh.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as redis

from ledger import constants
from ledger.stream import keys
from ledger.stream.health import LedgerHealth, check_ledger_health

log = logging.getLogger(__name__)


async def measure_backlog(client: redis.Redis, partition_count: int) -> dict[str, int]:
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(partition_count):
            pipe.xlen(keys.stream(partition))
        lengths = await pipe.execute()
    return {
        "stream_entries": sum(lengths),
        "busiest_partition_entries": max(lengths, default=0),
    }


def health_fields(health: LedgerHealth) -> dict[str, int | str]:
    """The verdict as hash fields: flat, with the failing partitions as JSON lists."""
    verdict = health.as_json()
    return {
        "healthy": int(health.healthy),
        "checked_at_ms": health.checked_at_ms,
        "workers_alive": health.workers_alive,
        "stalled_partitions": json.dumps(verdict["stalled_partitions"]),
        "unowned_partitions": json.dumps(verdict["unowned_partitions"]),
    }


async def record_ledger_health(ctx: dict[str, Any]) -> dict[str, int | str]:
    client: redis.Redis = ctx["ledger_redis"]
    settings = ctx["settings"]
    health = await check_ledger_health(client, settings.partition_count, settings.lease_ttl_ms)
    figures: dict[str, int | str] = {**await measure_backlog(client, settings.partition_count), **health_fields(health)}
    await client.hset(keys.HEALTH_KEY, mapping=figures)  # type: ignore[misc]
    for problem in health.problems():
        log.error("ledger unhealthy: %s", problem)
    if ctx.get("ledger_was_unhealthy") and health.healthy:
        log.info("ledger healthy again: every partition with entries is held and moving")
    ctx["ledger_was_unhealthy"] = not health.healthy
    if int(figures["busiest_partition_entries"]) > constants.backlog_warning_count:
        log.warning("ledger backlog is growing: %s", figures)
    return figures
