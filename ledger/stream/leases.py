"""Partition leases: a worker applies a partition only while it holds that partition's lease.

A lease is a Redis key with a time-to-live, renewed while the worker lives; when a worker dies its
leases lapse and another worker takes the partitions over, claiming their pending entries.
"""

from __future__ import annotations

import redis.asyncio as redis

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


class Leases:
    def __init__(self, client: redis.Redis, owner: str, partition_count: int) -> None:
        self._client = client
        self._owner = owner
        self._partition_count = partition_count
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.held: set[int] = set()

    async def maintain(self) -> tuple[set[int], set[int]]:
        """Renew what we hold and take what is free; return (gained, lost)."""
        partitions = range(self._partition_count)
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                if partition in self.held:
                    await self._renew(
                        keys=[keys.lease(partition)], args=[self._owner, constants.lease_ttl_ms], client=pipe
                    )
                else:
                    pipe.set(keys.lease(partition), self._owner, nx=True, px=constants.lease_ttl_ms)
            answers = await pipe.execute()
        now_held = {partition for partition, answer in zip(partitions, answers, strict=True) if answer}
        gained, lost = now_held - self.held, self.held - now_held
        self.held = now_held
        return gained, lost

    async def release_all(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in self.held:
                await self._release(keys=[keys.lease(partition)], args=[self._owner], client=pipe)
            await pipe.execute()
        self.held = set()
