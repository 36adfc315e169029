"""Who is calling: an API key or a signed user token, from `Authorization: Bearer ...` (or, on a
WebSocket, the `authorization` field of graphql-transport-ws's connection_init payload).

Verified keys are kept for `key_cache_ttl_s` per process, so the hot path (usage) costs no query;
a revoked key therefore stops working within that time in other API processes, and at once in the
one that revoked it. While PostgreSQL is unreachable, a key verified in the last ten minutes is
still accepted, so recording usage (which needs only Redis) goes on. A key's last-used time is
written at most once a minute per process (`key_last_used_interval_s`): it says roughly when a
key was last seen, and an UPDATE of the one row per verification made every process that serves the key
wait on its row lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from graphql_api.access.principal import ANONYMOUS, Principal, PrincipalKind
from graphql_api.access.tokens import InvalidToken, read_token
from ledger import constants
from ledger.directory.api_keys import KEY_MARK, ApiKey, find_api_key, prefix_of, touch_api_key
from ledger.runtime.outages import OUTAGES

# How often a process writes a key's last-used time at most.


class Unauthenticated(Exception):
    pass


def key_principal(key: ApiKey) -> Principal:
    """The caller a stored key makes."""
    kind = {
        "admin": PrincipalKind.ADMIN,
        "partner": PrincipalKind.PARTNER,
        "organization": PrincipalKind.ORGANIZATION_KEY,
    }[key.scope]
    return Principal(kind, str(key.id), organization_id=key.organization_id, role=key.role, partner_id=key.partner_id)


class Authenticator:
    def __init__(self, pool: asyncpg.Pool, token_secret: bytes) -> None:
        self._pool = pool
        self._secret = token_secret
        # sha256(key) -> (expiry on the monotonic clock, prefix, principal)
        self._keys: dict[bytes, tuple[float, str, Principal]] = {}
        # key id -> when this process last wrote its last-used time (monotonic)
        self._touched: dict[UUID, float] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            return ANONYMOUS
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthenticated("use Authorization: Bearer <API key or user token>")
        if credentials.startswith(KEY_MARK):
            return await self._api_key(credentials)
        try:
            claims = read_token(self._secret, credentials)
        except InvalidToken as error:
            raise Unauthenticated(f"invalid user token: {error}") from None
        return Principal(PrincipalKind.USER, claims.user_id, partner_id=claims.partner_id)

    @property
    def token_secret(self) -> bytes:
        return self._secret

    def forget(self, prefix: str) -> None:
        """Drop a revoked key from this process's cache at once."""
        for digest, (_, cached_prefix, _) in list(self._keys.items()):
            if cached_prefix == prefix:
                del self._keys[digest]

    async def _api_key(self, key: str) -> Principal:
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[2]
        try:
            found = await find_api_key(self._pool, key)
        except OUTAGES:
            # PostgreSQL is away: a key verified before still works (usage keeps flowing into the
            # streams); a key never seen cannot be checked, and the caller is told to retry.
            if cached is not None and cached[0] + constants.stale_key_max_s > now:
                return cached[2]
            raise
        if found is None:
            self._keys.pop(digest, None)
            raise Unauthenticated("unknown or revoked API key")
        if self._touched.get(found.id, -constants.key_last_used_interval_s) + constants.key_last_used_interval_s <= now:
            if len(self._touched) >= constants.key_cache_max:
                self._touched.clear()
            self._touched[found.id] = now
            with contextlib.suppress(*OUTAGES):
                await touch_api_key(self._pool, found.id, datetime.now(UTC))
        principal = key_principal(found)
        if len(self._keys) >= constants.key_cache_max:
            self._keys.clear()
        self._keys[digest] = (now + constants.key_cache_ttl_s, prefix_of(key) or "", principal)
        return principal
