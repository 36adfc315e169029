"""Organization balances: from the balance snapshot the ledger workers write to Redis after each
commit (`ledger.stream.feeds`) when it is current, else from the committed lots and holds in
PostgreSQL.

Current means: written at most `_AGE_MAX` ago and before its `until` (the first instant
at which time alone would change the balance). The workers write it in the pipeline that
acknowledges the batch, before the meter update is published, so a balance read after a meter
push or an APPLIED answer sees that commit. A snapshot may lag the journal only when a worker
committed and then failed to acknowledge (it crashed, Redis failed it, or it was paused past its
lease and wrote late): the next owner reads the entries again and rewrites it, and whatever
happens, one older than `_AGE_MAX` is never used. A missing or unreadable one (a Redis
without AOF restarted, an older release's, Redis away) is read from PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from redis.exceptions import RedisError
from strawberry.dataloader import DataLoader

from ledger import constants
from ledger.core.state import Balance
from ledger.store.balances import balances_by_orgs
from ledger.stream import keys
from ledger.stream.feeds import decode_snapshot

log = logging.getLogger(__name__)

# The oldest snapshot a read trusts: the bound on how stale a balance can ever be read.
_AGE_MAX = timedelta(seconds=constants.balance_snapshot_age_max_s)


def balance_loader(pool: asyncpg.Pool, client: redis.Redis) -> DataLoader[UUID, Balance]:
    async def load(org_ids: Sequence[UUID]) -> list[Balance]:
        now = datetime.now(UTC)
        found = await snapshot_balances(client, org_ids, now)
        missing = [org_id for org_id in org_ids if org_id not in found]
        if missing:
            found.update(await balances_by_orgs(pool, missing, now))
        return [found[org_id] for org_id in org_ids]

    return DataLoader(load_fn=load)


async def snapshot_balances(client: redis.Redis, org_ids: Sequence[UUID], now: datetime) -> dict[UUID, Balance]:
    """The balances whose snapshots are current at `now` (one GET each: the keys sit in different
    slots of a Redis Cluster); none when Redis cannot answer."""
    try:
        if len(org_ids) == 1:
            raws = [await client.get(keys.balance_snapshot(org_ids[0]))]
        else:
            async with client.pipeline(transaction=False) as pipe:
                for org_id in org_ids:
                    pipe.get(keys.balance_snapshot(org_id))
                raws = await pipe.execute()
    except (RedisError, OSError) as failure:
        log.warning("balance snapshots not read, PostgreSQL answers: %r", failure)
        return {}
    found: dict[UUID, Balance] = {}
    for org_id, raw in zip(org_ids, raws, strict=True):
        balance = None if raw is None else decode_snapshot(raw, now, _AGE_MAX)
        if balance is not None:
            found[org_id] = balance
    return found
