"""Running a ledger worker as a process: connections, signals, clean shutdown."""

from __future__ import annotations

import asyncio
import signal

from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from ledger.stream.connection import redis_client
from ledger.stream.worker import LedgerWorker


async def run_ledger_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    pool = await create_pool(settings.database_url)
    client = redis_client(settings)
    try:
        await LedgerWorker(pool, client, settings.partition_count, settings.lease_ttl_ms).run(stop)
    finally:
        await client.aclose()
        await pool.close()
