"""API keys: shown once, stored as SHA-256 beside a visible prefix, scoped, revocable.

A key reads `cl_<8 characters>_<43 characters>`. Its first 11 characters (`cl_` and the eight) are
its prefix: unique, stored in clear to find the key and to show it in lists. The rest is 256 random
bits, so SHA-256 of the whole key is safe to store (a slow password hash protects guessable
secrets; this one is not guessable) and cheap to check on every request.

Which caller a key makes is authentication's (`graphql_api.access.authenticate`); this module only
stores, finds and revokes them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.core.errors import NotFound
from ledger.directory.partners import partner
from ledger.directory.roles import Role

KEY_MARK = "cl_"
PREFIX_LENGTH = len(KEY_MARK) + 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    prefix: str
    name: str
    # "admin", "partner" or "organization".
    scope: str
    organization_id: UUID | None
    partner_id: UUID | None
    role: Role | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def new_key() -> str:
    visible = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH - len(KEY_MARK)))
    return f"{KEY_MARK}{visible}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def prefix_of(key: str) -> str | None:
    """The key's prefix, or None when it cannot be one of ours."""
    if not key.startswith(KEY_MARK) or len(key) < PREFIX_LENGTH + 2 or key[PREFIX_LENGTH] != "_":
        return None
    return key[:PREFIX_LENGTH]


def _key(row: asyncpg.Record) -> ApiKey:
    data = dict(row)
    data.pop("secret_hash", None)
    data["role"] = None if data["role"] is None else Role(data["role"])
    return ApiKey(**data)


_COLUMNS = """id, prefix, name, scope, org_id AS organization_id, partner_id, role, created_at, revoked_at,
last_used_at"""
_INSERT = f"""
INSERT INTO api_keys (id, prefix, secret_hash, name, scope, org_id, partner_id, role)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def create_api_key(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    name: str,
    scope: str,
    organization_id: UUID | None = None,
    partner_id: UUID | None = None,
    role: Role | None = None,
    key: str | None = None,
) -> tuple[ApiKey, str]:
    """The stored key and the key itself, which is never available again."""
    key = new_key() if key is None else key
    prefix = prefix_of(key)
    if prefix is None:
        raise ValueError(f"an API key must look like {KEY_MARK}xxxxxxxx_<secret>")
    row = await connection.fetchrow(
        _INSERT, uuid.uuid4(), prefix, key_hash(key), name, scope, organization_id, partner_id,
        None if role is None else role.value,
    )  # fmt: skip
    return _key(row), key


async def create_partner_key(
    connection: asyncpg.Connection | asyncpg.Pool, name: str, partner_id: UUID
) -> tuple[ApiKey, str]:
    """A key of an existing partner, and the key itself."""
    if await partner(connection, partner_id) is None:
        raise NotFound("partner not found")
    return await create_api_key(connection, name=name, scope="partner", partner_id=partner_id)


_BY_PREFIX = f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE prefix = $1"  # noqa: S608 - constant column lists


async def find_api_key(connection: asyncpg.Connection | asyncpg.Pool, key: str) -> ApiKey | None:
    """The live key this secret is, or None (unknown, wrong secret or revoked)."""
    prefix = prefix_of(key)
    if prefix is None:
        return None
    row = await connection.fetchrow(_BY_PREFIX, prefix)
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), key_hash(key)):
        return None
    found = _key(row)
    return None if found.revoked_at is not None else found


_BY_ID = f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1"  # noqa: S608 - constant column lists


async def api_key(connection: asyncpg.Connection | asyncpg.Pool, id: UUID) -> ApiKey | None:
    row = await connection.fetchrow(_BY_ID, id)
    return None if row is None else _key(row)


_BY_ORG = f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id"  # noqa: S608 - constant column lists


async def api_keys_of(connection: asyncpg.Connection | asyncpg.Pool, organization_id: UUID) -> list[ApiKey]:
    return [_key(row) for row in await connection.fetch(_BY_ORG, organization_id)]


_REVOKE = f"""
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant column lists


async def revoke_api_key(
    connection: asyncpg.Connection | asyncpg.Pool, id: UUID, organization_id: UUID | None = None
) -> ApiKey:
    """Revoke a key (revoking twice keeps the first time). Given `organization_id`, only a key of
    that organization: another org's key is as unknown as a made-up id."""
    found = await api_key(connection, id)
    if found is None or (organization_id is not None and found.organization_id != organization_id):
        raise NotFound("API key not found")
    row = await connection.fetchrow(_REVOKE, id)
    if row is None:
        raise NotFound("API key not found")
    return _key(row)


_TOUCH = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"


async def touch_api_key(connection: asyncpg.Connection | asyncpg.Pool, id: UUID, at: datetime) -> None:
    await connection.execute(_TOUCH, id, at)


async def ensure_admin_key(connection: asyncpg.Connection | asyncpg.Pool, key: str) -> None:
    """Store the operator's chosen admin key unless it is stored already (start-up, idempotent)."""
    if await find_api_key(connection, key) is None:
        try:
            await create_api_key(connection, name="bootstrap admin", scope="admin", key=key)
        except asyncpg.UniqueViolationError:
            raise ValueError("CREDIT_LEDGER_ADMIN_KEY's prefix belongs to another (or revoked) key") from None


_ANY_ADMIN = "SELECT EXISTS (SELECT FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL)"


async def any_admin_key(connection: asyncpg.Connection | asyncpg.Pool) -> bool:
    return bool(await connection.fetchval(_ANY_ADMIN))
