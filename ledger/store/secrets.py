"""Secrets the service makes for itself, once per deployment, and keeps in PostgreSQL, so every
process of the deployment reads the same one (e.g. the user-token signing key)."""

from __future__ import annotations

import secrets

import asyncpg

_ENSURE = "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
_READ = "SELECT value FROM service_secrets WHERE name = $1"


async def service_secret(connection: asyncpg.Connection | asyncpg.Pool, name: str) -> bytes:
    """The secret called `name`: 32 random bytes made by whichever process asks first."""
    await connection.execute(_ENSURE, name, secrets.token_bytes(32))
    return bytes(await connection.fetchval(_READ, name))
