"""The catalog's rate versions (`catalog_rates`, migration 011): read for the products a batch
prices (`rate_versions_for`), and kept by a ledger worker as it last read them, current by
LISTEN/NOTIFY (`CatalogRates`).

A product's versions are all of them, every effective date and dimension set, oldest first: the
actor picks the one in force at each event's time among those its dimensions select
(`ledger.core.state.rate_in_force`), so a new version prices only events after it.

A change to a product's versions (the trigger of migration 011) drops them from the cache, so the
next batch that prices it reads them again; a batch applied in the moment between the change's
commit and its notification still prices at the old rate, as if it had come a moment earlier.
Without a live listener (not yet connected, or its connection lost) every batch reads the rates it
prices, and what was cached is dropped when listening resumes, since changes may have gone unheard
meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection, Iterable, Mapping

import asyncpg

from ledger import constants
from ledger.core.state import Rate

log = logging.getLogger(__name__)

CHANNEL = "credit_ledger_catalog"

_VERSIONS = """
SELECT product, dimensions, effective_at, credits_per_unit, overage_price_per_unit, cost_per_unit, currency
FROM catalog_rates WHERE product = ANY($1::text[])
ORDER BY product, effective_at, dimensions
"""


async def rate_versions_for(
    connection: asyncpg.Connection | asyncpg.Pool, products: Iterable[str]
) -> dict[str, tuple[Rate, ...]]:
    """Every catalog version of these products, oldest first; a product with none is absent."""
    found: dict[str, list[Rate]] = {}
    for row in await connection.fetch(_VERSIONS, sorted(set(products))):
        found.setdefault(row["product"], []).append(
            Rate(
                product=row["product"],
                credits_per_unit=row["credits_per_unit"],
                overage_price_per_unit=row["overage_price_per_unit"],
                cost_per_unit=row["cost_per_unit"],
                currency=row["currency"],
                effective_at=row["effective_at"],
                dimensions=dict(row["dimensions"]),
            )
        )
    return {product: tuple(versions) for product, versions in found.items()}


class CatalogRates:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._listener: asyncpg.Connection | None = None
        self._next_attempt = 0.0
        # Off until `start`: the listener holds a pooled connection for the worker's whole life.
        self._enabled = False
        # Replaced, never changed in place: states share it, and identity says "unchanged".
        self.card: Mapping[str, tuple[Rate, ...]] = {}

    async def current(
        self, connection: asyncpg.Connection, products: Collection[str]
    ) -> Mapping[str, tuple[Rate, ...]]:
        """The versions of `products` (and whatever else is cached), reading only what is not."""
        await self._listen()
        wanted = set(products) if self._listener is None else set(products) - self.card.keys()
        if wanted:
            fresh = await rate_versions_for(connection, wanted)
            if any(self.card.get(product) != rate for product, rate in fresh.items()):
                self.card = {**self.card, **fresh}
        return self.card

    def start(self) -> None:
        self._enabled = True

    async def _listen(self) -> None:
        if not self._enabled or self._listener is not None or time.monotonic() < self._next_attempt:
            return
        self._next_attempt = time.monotonic() + constants.catalog_listener_reconnect_interval_s
        connection: asyncpg.Connection = await self._pool.acquire()
        try:
            await connection.add_listener(CHANNEL, self._changed)
        except BaseException:
            await self._pool.release(connection)
            raise
        connection.add_termination_listener(self._lost)
        self.card = {}
        self._listener = connection

    def _changed(self, _connection: object, _pid: int, _channel: str, product: str) -> None:
        self.card = {key: rate for key, rate in self.card.items() if key != product}

    def _lost(self, _connection: object) -> None:
        log.warning("catalog listener lost; reading rates every batch until it is back")
        self._listener = None

    async def close(self) -> None:
        self._enabled = False
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove_termination_listener(self._lost)  # a closing pool is no lost listener
            with contextlib.suppress(Exception):
                await listener.remove_listener(CHANNEL, self._changed)
            await self._pool.release(listener)
