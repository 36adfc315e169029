"""Numbered `.sql` migrations, applied in order, once each, under an advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_ADVISORY_LOCK_ID = 0x63726564_6C656467  # "credledg"
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = "SELECT version FROM schema_migrations"
_RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("ledger.store").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    assert len(set(versions)) == len(versions), f"two migrations share a number: {versions}"
    return found


async def migrate(connection: asyncpg.Connection, *, up_to: int | None = None) -> list[int]:
    """Apply the migrations this database lacks (those numbered up to `up_to`, when given: a test
    of one migration on a database as the one before left it); return the versions applied now."""
    applied_now = []
    await connection.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_ID)
    try:
        await connection.execute(_CREATE_TABLE)
        done = {row["version"] for row in await connection.fetch(_APPLIED)}
        for migration in available():
            if migration.version in done or (up_to is not None and migration.version > up_to):
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(_RECORD, migration.version, migration.name)
            log.info("applied migration %03d_%s", migration.version, migration.name)
            applied_now.append(migration.version)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_ID)
    return applied_now
