"""API keys: verified again every few seconds (a revoked key stops soon in every process), but
their last-used time written at most once a minute per process (no row-lock queue on a hot key)."""

from __future__ import annotations

import asyncpg
import pytest

from graphql_api.access import authenticate
from graphql_api.access.authenticate import Authenticator, Unauthenticated
from ledger import constants
from ledger.directory.api_keys import create_api_key, revoke_api_key


async def test_keys_are_verified_often_and_touched_rarely(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(authenticate.time, "monotonic", lambda: now[0])
    stored, key = await create_api_key(pool, name="hot", scope="admin")
    authenticator = Authenticator(pool, b"secret")

    async def last_used() -> object:
        return await pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", stored.id)

    await authenticator.authenticate(f"Bearer {key}")
    first = await last_used()
    assert first is not None
    now[0] += constants.key_cache_ttl_s + 1  # verified again, not touched again
    await authenticator.authenticate(f"Bearer {key}")
    assert await last_used() == first
    now[0] += constants.key_last_used_interval_s
    await authenticator.authenticate(f"Bearer {key}")
    assert await last_used() != first
    # A revoked key is refused at its next verification, whatever its last touch.
    await revoke_api_key(pool, stored.id)
    now[0] += constants.key_cache_ttl_s + 1
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(f"Bearer {key}")
