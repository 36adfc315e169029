"""Partition fencing tokens, kept in PostgreSQL beside the data they protect (migration 004).

A token comes from PostgreSQL, not Redis, so it stays monotonic whatever happens to Redis."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import asyncpg

_CLAIM = """
INSERT INTO ledger_partitions AS p (partition, epoch, owner)
SELECT partition, 1, $2 FROM unnest($1::integer[]) AS partition ORDER BY partition
ON CONFLICT (partition) DO UPDATE SET epoch = p.epoch + 1, owner = excluded.owner, claimed_at = now()
RETURNING partition, epoch
"""

# Row locks in partition order, so a commit and a takeover never deadlock.
_CHECK = """
SELECT p.partition FROM ledger_partitions p
JOIN unnest($1::integer[], $2::bigint[]) AS f (partition, epoch) ON p.partition = f.partition AND p.epoch = f.epoch
ORDER BY p.partition
FOR SHARE OF p
"""


class FencedOut(RuntimeError):
    """Another worker took these partitions over: this worker's batch must not commit."""

    def __init__(self, partitions: frozenset[int]) -> None:
        super().__init__(f"fenced out of partitions {sorted(partitions)}")
        self.partitions = partitions


async def claim(
    connection: asyncpg.Connection | asyncpg.Pool, partitions: Collection[int], owner: str
) -> dict[int, int]:
    """Take partitions over: each gets a new epoch, returned as this owner's token. Waits for any
    commit still holding one of them."""
    rows = await connection.fetch(_CLAIM, sorted(partitions), owner)
    return {row["partition"]: row["epoch"] for row in rows}


async def check(connection: asyncpg.Connection, tokens: Mapping[int, int]) -> None:
    """Inside the batch's transaction, before it commits: hold every token or raise FencedOut.
    The share locks last until the commit, so no takeover can slip in between."""
    partitions = sorted(tokens)
    held = {row["partition"] for row in await connection.fetch(_CHECK, partitions, [tokens[p] for p in partitions])}
    if len(held) != len(partitions):
        raise FencedOut(frozenset(partitions) - held)
