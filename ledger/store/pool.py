"""Connection pools with the codecs the ledger relies on."""

from __future__ import annotations

import json
from typing import TypeAlias

import asyncpg

from ledger import constants

# What a query runs on: a connection (inside a transaction) or the pool (one statement).
Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


class JsonText(str):
    """JSON already serialized: sent to a jsonb column as it is, not encoded again."""

    __slots__ = ()


_JSONB_VERSION = b"\x01"


def _encode_jsonb(value: object) -> bytes:
    text = value if isinstance(value, JsonText) else json.dumps(value)
    return _JSONB_VERSION + text.encode()


def _decode_jsonb(data: bytes) -> object:
    return json.loads(data[1:])


async def _init_connection(connection: asyncpg.Connection) -> None:
    # Binary, so binary COPY can write jsonb columns too.
    await connection.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


async def create_pool(database_url: str, *, size_max: int = constants.pool_size_max) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size_max,
        init=_init_connection,
        command_timeout=constants.pool_command_timeout_s,
    )
    assert pool is not None
    return pool
