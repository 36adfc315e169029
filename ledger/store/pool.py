"""Connection pools with the codecs the ledger relies on."""

from __future__ import annotations

import json

import asyncpg

from ledger import constants


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(database_url: str, *, size_max: int = constants.pool_size_max) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=size_max, init=_init_connection, command_timeout=30
    )
    assert pool is not None
    return pool
