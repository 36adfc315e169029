"""Rate limits per caller and per organization: GCRA in Redis, on Redis's clock.

One script checks and charges every limit a request meets at once, all or nothing: a request
refused by one limit costs nothing against the others. Each limit keeps one key, its theoretical
arrival time (TAT) in microseconds, which expires when idle. A limit of `rate` per second with
`burst` lets `burst` requests through at once, then one every 1/rate seconds.

The platform admin's requests are not limited: they come from the operator's own backend, which
feeds every organization at once. A request is charged once: its caller on its first authorized
field, and each organization it touches the first time it touches it. A `recordUsageBatch` of a
thousand events counts as one request for its caller and each of its organizations: batches are
the cheap way in, and the ledger's own backpressure (OVERLOADED) bounds what they queue.

Redis being unreachable (or failing otherwise) lets requests through (logged): a write needs Redis anyway and answers
UNAVAILABLE on its own, and refusing reads during a Redis outage would be worse than not limiting.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis.asyncio as redis
from redis.exceptions import NoScriptError, RedisError

from ledger.runtime.rate_limit import RateLimit
from ledger.stream import keys as redis_keys

log = logging.getLogger(__name__)

# KEYS: one per limit; ARGV: per limit, its emission interval and its burst capacity, in microseconds.
# Answers 0 when allowed (and charged), else the microseconds until it would be.
_GCRA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tats = {}
local wait = 0
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[2 * i - 1])
    local capacity = tonumber(ARGV[2 * i])
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local new_tat = tat + interval
    if new_tat - now > capacity then
        wait = math.max(wait, new_tat - now - capacity)
    end
    tats[i] = new_tat
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    redis.call('SET', key, tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return 0
"""
_GCRA_SHA = hashlib.sha1(_GCRA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def _gcra_arguments(limit: RateLimit) -> tuple[int, int]:
    """The script's emission interval and burst tolerance, in microseconds."""
    interval = round(1_000_000 / limit.per_second)
    return interval, interval * limit.burst


class RateLimited(Exception):
    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"rate limited; retry in {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class RateLimiter:
    def __init__(self, client: redis.Redis, per_caller: RateLimit, per_organization: RateLimit) -> None:
        self._client = client
        self.per_caller = per_caller
        self.per_organization = per_organization

    async def charge(self, caller: str | None, organizations: list[str]) -> None:
        """Charge one request to `caller` (None: not limited) and to each organization; raise
        RateLimited (charging nothing) when any limit is spent."""
        keys: list[str] = []
        arguments: list[int] = []
        if caller is not None and self.per_caller.enabled:
            keys.append(redis_keys.rate_limit_caller(caller))
            arguments.extend(_gcra_arguments(self.per_caller))
        if self.per_organization.enabled:
            for organization in organizations:
                keys.append(redis_keys.rate_limit_organization(organization))
                arguments.extend(_gcra_arguments(self.per_organization))
        if not keys:
            return
        try:
            wait = await self._run(keys, arguments)
        except (RedisError, OSError) as failure:
            # Any Redis trouble (down, out of memory, a busy script): not limiting beats refusing.
            log.warning("rate limits not checked: %r", failure)
            return
        if wait:
            raise RateLimited(max(1, -(-int(wait) // 1000)))

    async def _run(self, keys: list[str], arguments: list[int]) -> Any:
        try:
            return await self._client.evalsha(_GCRA_SHA, len(keys), *keys, *arguments)  # type: ignore[misc,arg-type]
        except NoScriptError:
            await self._client.script_load(_GCRA)
            return await self._client.evalsha(_GCRA_SHA, len(keys), *keys, *arguments)  # type: ignore[misc,arg-type]
