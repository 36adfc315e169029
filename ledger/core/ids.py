"""Ids derived from what a command carries, so that applying it again yields the same ids.

Each kind of derived id has a namespace of its own (uuid5), fixed once: changing a value here would
change every id derived from it, and the journal already holds them.
"""

from __future__ import annotations

import uuid
from enum import Enum
from uuid import UUID


class Namespace(Enum):
    LOTS = UUID("5f0c1a52-8d7e-4b8f-9a51-3e2f0d6c9b10")  # granted, rolled-over and transferred lots
    HOLDS_AND_QUOTES = UUID("8a6d3c0e-2b1f-4e57-9c44-71d0f3a5b2e6")
    ALERT_EVENTS = UUID("0b8f4d36-5c1e-4a9b-8f27-6d3e9a1c4b70")
    ALERT_RULES = UUID("3c9e7a10-4f2b-4d86-b1a5-9e0d7c6f2a41")  # an alert set without an alertId
    # The alerts the actor keeps by itself (storage over quota): apart, so no client key can name one.
    BUILT_IN_ALERTS = UUID("65fee9d5-adf2-49c7-ad26-c3ef45559778")


def derived_id(namespace: Namespace, *parts: object) -> UUID:
    """The id in `namespace` named by `parts`, joined with colons (e.g. a command id and a tag)."""
    return uuid.uuid5(namespace.value, ":".join(str(part) for part in parts))
