"""Stripe's events in our terms, whatever arrives: an event is parsed here once, by the webhook and
by the poll alike, and one that is not an event we can store is refused (`EventMalformed`) instead of
failing deeper down (a 500 to Stripe, a poll stuck on it for good).

PostgreSQL stores neither NUL (`\\u0000`) nor a lone surrogate in jsonb or text, although both are
valid JSON escapes: they are dropped (NUL) or replaced (a surrogate) in the stored payload, whose
meaning for us (ids, types, amounts, metadata we wrote) never holds either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_ID_LENGTH_MAX = 255  # stripe_events.id's check
_CREATED_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a timestamptz holds here
_DEPTH_MAX = 64  # Stripe nests a few levels; deeper is not an event


class EventMalformed(ValueError):
    """A (verified or listed) event we cannot take: not an object, no id/type/created, or odd values."""


@dataclass(frozen=True, slots=True)
class EventView:
    id: str
    type: str
    created: datetime
    object: Mapping[str, Any]  # data.object
    payload: Mapping[str, Any]  # the whole event, as stored


def storable(value: Any, depth: int = 0) -> Any:
    """`value` with every string (keys too) as PostgreSQL can store it: NULs dropped, lone surrogates
    replaced."""
    if depth > _DEPTH_MAX:
        raise EventMalformed("the event nests too deeply")
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {storable(str(k), depth + 1): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v, depth + 1) for v in value]
    return value


def event_view(data: Any) -> EventView:
    """The event `data` (a decoded JSON object) is, made storable; EventMalformed if it is none."""
    if not isinstance(data, Mapping):
        raise EventMalformed("an event is a JSON object")
    clean = storable(data)
    id, kind, created = clean.get("id"), clean.get("type"), clean.get("created")
    if not isinstance(id, str) or not 1 <= len(id) <= _ID_LENGTH_MAX:
        raise EventMalformed(f"an event's id is a string of 1 to {_ID_LENGTH_MAX} characters")
    if not isinstance(kind, str) or not 1 <= len(kind) <= _ID_LENGTH_MAX:
        raise EventMalformed("an event has a type")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created <= _CREATED_MAX:
        raise EventMalformed("an event's created is a Unix time in seconds")
    inner = clean.get("data")
    found = inner.get("object") if isinstance(inner, Mapping) else None
    return EventView(
        id=id,
        type=kind,
        created=datetime.fromtimestamp(created, UTC),
        object=found if isinstance(found, Mapping) else {},
        payload=clean,
    )
