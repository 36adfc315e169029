"""Idempotency keys derived from billing facts: a job retried, two job workers, or a request and its
retry all name the same fact, so the ledger applies its effect once."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID


def period_key(subscription_id: UUID, period_start: datetime, reason: str) -> str:
    """`period:<subscription>:<period start, UTC>:<reason>`, e.g. `...:base` or `...:close`."""
    return f"period:{subscription_id}:{period_start.astimezone(UTC).isoformat()}:{reason}"


def change_key(subscription_id: UUID, change_id: UUID, what: str) -> str:
    """A mid-period change's effect: `seats:<subscription>:<change>` or `upgrade:<subscription>:<change>`."""
    return f"{what}:{subscription_id}:{change_id}"
