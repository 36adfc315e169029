"""One keyset pager for every list read a page at a time, and its opaque cursors.

A cursor is base64url of the organization's id and the row's key: times (with their offset) and
ids. One made on one organization's list is refused with INVALID_INPUT on another's, and a page is
always read under the parent organization anyway, so no cursor can ever reach another tenant's rows.
Each list names its key's shape once (`Keyset`); `page` checks the page size, reads one row more
than asked (which says whether there is a next page) and hands the list its rows to shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from graphql_api.errors import invalid
from ledger import constants

Part = datetime | UUID
K = TypeVar("K")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Keyset(Generic[K]):
    """How one list's keys travel as cursors."""

    of: str  # the list, as errors name it
    shape: tuple[type[datetime] | type[UUID], ...]
    parts: Callable[[K], tuple[Part, ...]]
    key: Callable[..., K]

    def encode(self, organization_id: UUID, key: K) -> str:
        return encode_cursor(organization_id, *self.parts(key))

    def decode(self, organization_id: UUID, cursor: str) -> K:
        return self.key(*decode_cursor(organization_id, cursor, self.shape, self.of))


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    rows: list[R]
    has_next: bool


async def page(
    organization_id: UUID,
    first: int,
    after: str | None,
    keyset: Keyset[K],
    fetch: Callable[[K | None, int], Awaitable[Sequence[R]]],
) -> Page[R]:
    """Up to `first` rows after the cursor `after`: `fetch(before, limit)` reads them."""
    if not 1 <= first <= constants.page_size_max:
        raise invalid(f"first must be 1 to {constants.page_size_max}")
    before = None if after is None else keyset.decode(organization_id, after)
    found = await fetch(before, first + 1)
    return Page(list(found[:first]), len(found) > first)


def encode_cursor(organization_id: UUID, *key: Part) -> str:
    fields = [str(organization_id), *(part.isoformat() if isinstance(part, datetime) else str(part) for part in key)]
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()


def decode_cursor(
    organization_id: UUID, cursor: str, shape: tuple[type[datetime] | type[UUID], ...], of: str
) -> list[Part]:
    """The key parts of a cursor of `shape` (datetime or UUID each) made on this organization's `of`."""
    try:
        org, *fields = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        owner = UUID(org)
        if len(fields) != len(shape):
            raise ValueError("another list's cursor")
        parts: list[Part] = [
            _instant(value) if kind is datetime else UUID(value) for kind, value in zip(shape, fields, strict=True)
        ]
    except (binascii.Error, UnicodeError, ValueError, TypeError, AttributeError, OverflowError):
        raise invalid("after is not a cursor of this list") from None
    if owner != organization_id:
        raise invalid(f"after is a cursor of another organization's {of}")
    return parts


def _instant(value: str) -> datetime:
    """A time with its offset, in UTC (as PostgreSQL will take it: a year-1 time far east overflows)."""
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("a cursor's times carry their offset")
    return at.astimezone(UTC)
