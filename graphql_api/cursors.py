"""Opaque keyset cursors bound to their organization.

A cursor is base64url of the organization's id and the row's key: times (with their offset) and
ids. One made on one organization's list is refused with INVALID_INPUT on another's, and a page is
always read under the parent organization anyway, so no cursor can ever reach another tenant's rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from uuid import UUID

from graphql_api.errors import invalid

Part = datetime | UUID


def encode_cursor(organization_id: UUID, *key: Part) -> str:
    fields = [str(organization_id), *(part.isoformat() if isinstance(part, datetime) else str(part) for part in key)]
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()


def decode_cursor(organization_id: UUID, cursor: str, shape: tuple[type[Part], ...], of: str) -> list[Part]:
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
