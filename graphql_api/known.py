"""What this API process has already seen exist, so the hot paths (usage) check it without a query.

Organization rows never change and are never deleted: once read they are kept (bounded, least
recently confirmed dropped first). A product is remembered with its catalog rate (the cheapest
version), for a cheap check that a price stays in range before it is queued; the catalog can gain
cheaper versions, so that is read again after `ttl_s` (the actor, which knows the rate in force,
judges every price again anyway).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KnownMap(Generic[K, V]):
    """A bounded map, least recently confirmed dropped first; with `ttl_s`, an entry confirmed
    longer ago than that counts as unknown (and is read again by the caller)."""

    def __init__(self, capacity: int, ttl_s: float | None = None) -> None:
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        return None if found is None else found[0]

    def unknown(self, keys: Iterable[K]) -> set[K]:
        if self._ttl_s is None:
            return {key for key in keys if key not in self._items}
        now = time.monotonic()
        return {key for key in keys if (found := self._items.get(key)) is None or found[1] <= now}

    def add(self, items: Mapping[K, V]) -> None:
        expires = time.monotonic() + (self._ttl_s or 0.0)
        for key, value in items.items():
            self._items[key] = (value, expires)
            self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
