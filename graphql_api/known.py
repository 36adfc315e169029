"""What this API process has already seen exist. Organizations and products are never deleted, so
once found they need no further lookup: the hot mutations (usage) check them without a query.
A product is remembered with its catalog rate as first seen, for a cheap check that a price stays
in range before it is queued (the actor, which knows the rate in force, judges it again)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KnownSet(Generic[K]):
    """A bounded set, least recently confirmed dropped first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, None] = OrderedDict()

    def unknown(self, items: Iterable[K]) -> set[K]:
        return {item for item in items if item not in self._items}

    def add(self, items: Iterable[K]) -> None:
        for item in items:
            self._items[item] = None
            self._items.move_to_end(item)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


class KnownMap(Generic[K, V]):
    """A bounded map, least recently confirmed dropped first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def unknown(self, keys: Iterable[K]) -> set[K]:
        return {key for key in keys if key not in self._items}

    def add(self, items: Mapping[K, V]) -> None:
        for key, value in items.items():
            self._items[key] = value
            self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
