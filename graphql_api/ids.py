from __future__ import annotations

from uuid import UUID

from graphql_api.errors import invalid


def parse_id(value: str, what: str) -> UUID:
    """Ids are UUIDs; anything else is the client's mistake, never a server error."""
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise invalid(f"{what} is not a valid id: {value!r}") from None
