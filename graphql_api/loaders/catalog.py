"""The catalog, read once per request: every subscription in a partner's list of organizations,
and a mutation's answer, show plans from one read instead of one each."""

from __future__ import annotations

import asyncio

import asyncpg

from ledger.billing.catalog import Catalog
from ledger.store.catalog_versions import load_catalog


class CatalogLoader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._loading: asyncio.Task[Catalog] | None = None

    async def load(self) -> Catalog:
        if self._loading is None:
            self._loading = asyncio.ensure_future(load_catalog(self._pool))
        return await asyncio.shield(self._loading)
