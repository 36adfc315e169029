"""The first admin key: the operator's (CREDIT_LEDGER_ADMIN_KEY), or one made on first start.

A made key is logged once and, on embedded servers, written to `<state dir>/admin-key` (mode 600)
so a developer can pick it up; it is never shown again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ledger.directory.api_keys import any_admin_key, create_api_key, ensure_admin_key
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool

log = logging.getLogger(__name__)


async def bootstrap_admin_key(settings: Settings, *, embedded: bool) -> None:
    pool = await create_pool(settings.database_url)
    try:
        if settings.admin_key:
            await ensure_admin_key(pool, settings.admin_key)
            return
        if await any_admin_key(pool):
            return
        _, key = await create_api_key(pool, name="first admin", scope="admin")
    finally:
        await pool.close()
    log.warning("created the first admin API key (shown once): %s", key)
    if embedded:
        path = Path(settings.state_dir) / "admin-key"
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key + "\n")
        log.warning("and wrote it to %s", path)
