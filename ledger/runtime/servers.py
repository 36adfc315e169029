"""Resolve where PostgreSQL and Redis are: the URLs given, or embedded servers started here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import asyncpg

from ledger.runtime.embedded import EmbeddedServers
from ledger.runtime.settings import Settings, SettingsError
from ledger.store.migrate import migrate

log = logging.getLogger(__name__)

# The embedded servers this process started (not those it attached to), for `serve`'s supervisor to
# watch and restart: the same process owns them, so it alone may.
_started_here: list[EmbeddedServers] = []


def embedded_servers_started_here() -> EmbeddedServers | None:
    return _started_here[-1] if _started_here else None


@contextlib.contextmanager
def servers(settings: Settings) -> Iterator[Settings]:
    """Yield settings with both URLs set, starting embedded servers for any that is missing."""
    if settings.redis_cluster and not settings.redis_url:
        # The embedded Redis is a single server: a cluster is always the operator's own.
        raise SettingsError("REDIS_URL", "", "a node of the Redis Cluster that CREDIT_LEDGER_REDIS_CLUSTER=true names")
    if settings.database_url and settings.redis_url:
        yield settings
        return
    embedded = EmbeddedServers(settings.state_dir, durable=settings.embedded_durable)
    urls = embedded.start()
    if embedded.owner:
        _started_here.append(embedded)
    try:
        yield settings.with_urls(settings.database_url or urls.database_url, settings.redis_url or urls.redis_url)
    finally:
        if embedded in _started_here:
            _started_here.remove(embedded)
        embedded.stop()


async def apply_migrations(database_url: str) -> list[int]:
    connection = await asyncpg.connect(database_url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


def migrate_now(settings: Settings) -> list[int]:
    return asyncio.run(apply_migrations(settings.database_url))
