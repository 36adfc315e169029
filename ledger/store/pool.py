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


async def _release_as_is(connection: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool beyond asyncpg's own rollback of an
    open transaction and clearing of its listeners: nothing. asyncpg's default reset is one more
    round trip per release (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL): two per ledger
    batch. Nothing here keeps session state on a pooled connection (no SET, no session advisory
    lock; the catalog listener removes its LISTEN before releasing)."""


async def create_pool(database_url: str, *, size_max: int = constants.pool_size_max, size_min: int = 1) -> asyncpg.Pool:
    """`size_min` connections are opened at once: an API process under load opens them all anyway,
    and one opened mid-load makes its first requests wait for the connection and for asyncpg's
    type introspection (tens of milliseconds of PostgreSQL's CPU each)."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min(size_min, size_max),
        max_size=size_max,
        init=_init_connection,
        reset=_release_as_is,
        command_timeout=constants.pool_command_timeout_s,
    )
    assert pool is not None
    return pool
