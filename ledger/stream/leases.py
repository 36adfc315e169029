"""Partition leases: who should apply each partition, shared fairly among the live workers.

A lease is a Redis key with a time-to-live, renewed while its worker lives. Workers also heartbeat
in a registry, so each knows how many are alive and keeps its fair share, ceil(partitions / workers):
a worker above it releases the surplus, one below it takes free partitions. When a worker joins,
the others shed partitions to it within a renewal or two; when one dies, its leases lapse and the
others take them over.

A lease is advisory: Redis may lose it, or a worker may stall past its TTL without knowing. What
makes a stale owner harmless is the fencing token checked at commit (`ledger.store.fences`). The
lease keeps that rare, and `valid` lets a worker stop reading a partition as soon as it cannot be
sure its lease still stands.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import NoScriptError

from ledger import constants
from ledger.stream import keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Redis's clock, not ours, decides who is alive: workers on other hosts may disagree on the time.
_HEARTBEAT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
"""


# Redis names scripts by their SHA-1.
_SHAS = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_RENEW, _RELEASE, _HEARTBEAT)}  # noqa: S324


class Leases:
    def __init__(self, client: redis.Redis, owner: str, partition_count: int, ttl_ms: int) -> None:
        self._client = client
        self._owner = owner
        self._partition_count = partition_count
        self._ttl_ms = ttl_ms
        # Partition -> the monotonic time until which we are sure we hold its lease.
        self._valid_until: dict[int, float] = {}

    @property
    def held(self) -> set[int]:
        return set(self._valid_until)

    def valid(self, partition: int) -> bool:
        return time.monotonic() < self._valid_until.get(partition, 0.0)

    async def maintain(self) -> tuple[set[int], set[int]]:
        """Heartbeat, renew what we hold, then shed or take partitions towards our fair share;
        return (gained, lost)."""
        started = time.monotonic()
        valid_until = started + self._ttl_ms / 1000 * constants.lease_validity_share
        held = sorted(self._valid_until)
        calls = [
            (_HEARTBEAT, keys.WORKER_REGISTRY, (self._owner, self._ttl_ms)),
            *[(_RENEW, keys.lease(partition), (self._owner, self._ttl_ms)) for partition in held],
        ]
        answers = await self._run_scripts(calls)
        workers, renewed = max(1, int(answers[0])), answers[1:]
        kept = [partition for partition, answer in zip(held, renewed, strict=True) if answer]
        lost = set(held) - set(kept)

        fair_share = math.ceil(self._partition_count / workers)
        surplus = kept[fair_share:]
        if surplus:
            await self._release_partitions(surplus)
            lost.update(surplus)
            kept = kept[:fair_share]
        gained = await self._take(fair_share - len(kept), exclude=set(kept))
        self._valid_until = dict.fromkeys([*kept, *gained], valid_until)
        return gained, lost

    async def _take(self, wanted: int, exclude: set[int]) -> set[int]:
        if wanted <= 0:
            return set()
        candidates = [p for p in range(self._partition_count) if p not in exclude]
        # One GET each, pipelined: on a Redis Cluster the leases live on as many slots as partitions.
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in candidates:
                pipe.get(keys.lease(partition))
            owners = await pipe.execute()
        free = [p for p, owner in zip(candidates, owners, strict=True) if owner is None]
        # In random order, so workers starting together do not all race for the same partitions.
        chosen = random.sample(free, min(wanted, len(free)))
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in chosen:
                pipe.set(keys.lease(partition), self._owner, nx=True, px=self._ttl_ms)
            answers = await pipe.execute()
        return {partition for partition, answer in zip(chosen, answers, strict=True) if answer}

    async def _release_partitions(self, partitions: list[int]) -> None:
        await self._run_scripts([(_RELEASE, keys.lease(partition), (self._owner,)) for partition in partitions])

    async def _run_scripts(self, calls: Sequence[tuple[str, str, tuple[str | int, ...]]]) -> list[Any]:
        """(script, key, arguments) calls by EVALSHA in one pipeline (redis-py's Script asks SCRIPT
        EXISTS first, and cannot be queued on a cluster pipeline); a Redis that forgot a script (a
        restart, a node that never loaded it) has it loaded, on every primary, and is asked again."""
        for attempt in range(2):
            async with self._client.pipeline(transaction=False) as pipe:
                for script, key, arguments in calls:
                    pipe.evalsha(_SHAS[script], 1, key, *arguments)  # type: ignore[arg-type]
                answers: list[Any] = await pipe.execute(raise_on_error=False)
            forgotten = {script for (script, _, _), answer in zip(calls, answers, strict=True)
                         if isinstance(answer, NoScriptError)}  # fmt: skip
            if not forgotten or attempt:
                break
            for script in forgotten:
                await self._client.script_load(script)
        if errors := [answer for answer in answers if isinstance(answer, Exception)]:
            raise errors[0]
        return answers

    async def release_all(self) -> None:
        """On a clean stop: free our partitions at once and leave the registry, so the others
        take over without waiting for TTLs."""
        await self._release_partitions(sorted(self._valid_until))
        await self._client.zrem(keys.WORKER_REGISTRY, self._owner)
        self._valid_until = {}

    def forget(self, partitions: set[int]) -> None:
        """Stop treating these as ours (fenced out at commit); their leases lapse on their own."""
        for partition in partitions:
            self._valid_until.pop(partition, None)
