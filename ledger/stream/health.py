"""Is the ledger applying commands? Two checks over every partition, in one pipelined round trip.

- **stalled**: the partition's oldest pending entry was delivered longer ago than
  `partition_stall_max_ms` and is still not acknowledged. A live owner acknowledges within a batch;
  a dead owner's entries are claimed by the next one (a new delivery, which resets the idle time)
  within a lease's TTL. So an entry idle past the bound is one nobody is getting through: the owner
  is wedged, its store is down, or the entry keeps failing.
- **unowned**: the partition has entries not yet acknowledged (pending, or never delivered) and no
  worker holds its lease. Leases lapse a TTL after their worker dies, and the survivors take them
  within a renewal, so this also flags, briefly, the moment between a death and its takeover.

Idle times come from Redis's own clock (XPENDING), so the verdict does not depend on the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as redis
from redis.exceptions import ResponseError

from ledger import constants
from ledger.runtime.outages import OUTAGES
from ledger.runtime.settings import Settings
from ledger.stream import keys

# Per partition: the group's summary, the stream's newest entry, its most idle pending entry past
# the bound, and the lease owner.
_COMMANDS_PER_PARTITION = 4


@dataclass(frozen=True, slots=True)
class Stalled:
    partition: int
    entry_id: str
    idle_ms: int
    pending: int

    def describe(self) -> str:
        return (
            f"partition {self.partition} is stalled: entry {self.entry_id} was delivered "
            f"{self.idle_ms / 1000:.1f} s ago and is still not applied ({self.pending} pending)"
        )


@dataclass(frozen=True, slots=True)
class Unowned:
    partition: int
    pending: int
    undelivered: bool

    def describe(self) -> str:
        waiting = f"{self.pending} pending" + (" and entries never read" if self.undelivered else "")
        return f"partition {self.partition} has {waiting} but no ledger worker holds it"


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    checked_at_ms: int  # Redis time
    workers_alive: int
    stalled: Sequence[Stalled] = field(default_factory=tuple)
    unowned: Sequence[Unowned] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return not self.stalled and not self.unowned

    def problems(self) -> list[str]:
        return [s.describe() for s in self.stalled] + [u.describe() for u in self.unowned]

    def as_json(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "checked_at_ms": self.checked_at_ms,
            "workers_alive": self.workers_alive,
            "stalled_partitions": [
                {"partition": s.partition, "entry": s.entry_id, "idle_ms": s.idle_ms, "pending": s.pending}
                for s in self.stalled
            ],
            "unowned_partitions": [
                {"partition": u.partition, "pending": u.pending, "undelivered": u.undelivered} for u in self.unowned
            ],
        }


async def check_ledger_health(
    client: redis.Redis,
    partition_count: int,
    lease_ttl_ms: int = constants.lease_ttl_ms,
    stall_max_ms: int = constants.partition_stall_max_ms,
) -> LedgerHealth:
    """Two round trips (TIME alone: a cluster pipeline takes only commands with keys); raises the
    client's error when Redis cannot be reached."""
    seconds, microseconds = await client.time()
    async with client.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.WORKER_REGISTRY, 0, -1, withscores=True)
        for partition in range(partition_count):
            stream = keys.stream(partition)
            pipe.xinfo_groups(stream)
            pipe.xrevrange(stream, count=1)
            pipe.xpending_range(stream, keys.CONSUMER_GROUP, "-", "+", 1, idle=stall_max_ms)
            pipe.get(keys.lease(partition))
        # A missing stream or group is an error reply for that command alone: nothing there yet.
        answers = await pipe.execute(raise_on_error=False)
    _raise_outage(answers)
    now_ms = int(seconds) * 1000 + int(microseconds) // 1000
    workers = sum(1 for _, beat in answers[0] if now_ms - beat <= lease_ttl_ms)
    stalled: list[Stalled] = []
    unowned: list[Unowned] = []
    for partition in range(partition_count):
        start = 1 + partition * _COMMANDS_PER_PARTITION
        groups, newest, oldest_idle, owner = answers[start : start + _COMMANDS_PER_PARTITION]
        pending, undelivered = _backlog(groups, newest)
        if isinstance(oldest_idle, list) and oldest_idle:
            entry = oldest_idle[0]
            stalled.append(Stalled(partition, _text(entry["message_id"]), int(entry["time_since_delivered"]), pending))
        if owner is None and (pending or undelivered):
            unowned.append(Unowned(partition, pending, undelivered))
    return LedgerHealth(now_ms, workers, tuple(stalled), tuple(unowned))


def _raise_outage(answers: list[Any]) -> None:
    """Per-command errors about missing keys are expected; a lost connection is not, nor a Redis
    Cluster's CLUSTERDOWN or TRYAGAIN (error replies too, but about the servers)."""
    for answer in answers:
        if isinstance(answer, Exception) and (not isinstance(answer, ResponseError) or isinstance(answer, OUTAGES)):
            raise answer


def _backlog(groups: Any, newest: Any) -> tuple[int, bool]:
    """(entries pending, whether entries were never delivered) from XINFO GROUPS and the newest
    entry. Redis 6.2 has no group lag, so "never delivered" is: the newest entry is past the group's
    last delivered one (streams are trimmed only below what is acknowledged, so it is kept)."""
    if not isinstance(newest, list) or not newest:
        return 0, False
    newest_id = _entry_id(newest[0][0])
    named = groups if isinstance(groups, list) else []
    group = next((g for g in named if _text(g["name"]) == keys.CONSUMER_GROUP), None)
    if group is None:
        return 0, True  # entries, and no worker ever adopted the partition
    return int(group["pending"]), _entry_id(group["last-delivered-id"]) < newest_id


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_id(value: bytes | str) -> tuple[int, int]:
    milliseconds, sequence = _text(value).split("-")
    return int(milliseconds), int(sequence)


async def readiness(pool: asyncpg.Pool, client: redis.Redis, settings: Settings) -> tuple[bool, dict[str, object]]:
    """/readyz's verdict, computed afresh: PostgreSQL and Redis answer, and no partition is stalled
    or unowned. Ready, the body is only that (`postgres` and `redis` "ok"); not ready, it names the
    failing checks (`failing`), each failing partition and why, and the Redis time of the check."""
    timeout_s = constants.ledger_health_timeout_ms / 1000
    body: dict[str, object] = {"postgres": "ok", "redis": "ok"}
    try:
        await pool.fetchval("SELECT 1", timeout=timeout_s)
    except Exception as error:  # whatever it is, the answer is "not ready", with its name
        body["postgres"] = type(error).__name__
    health: LedgerHealth | None = None
    try:
        health = await asyncio.wait_for(
            check_ledger_health(client, settings.partition_count, settings.lease_ttl_ms), timeout_s
        )
    except Exception as error:
        body["redis"] = type(error).__name__
    failing = [check for check in ("postgres", "redis") if body[check] != "ok"]
    if health is not None and not health.healthy:
        failing += [name for name in ("stalled_partitions", "unowned_partitions") if health.as_json()[name]]
        body |= {**health.as_json(), "problems": health.problems()}
    if not failing:
        return True, {"ready": True, **body}
    return False, {"ready": False, "failing": failing, **body}
