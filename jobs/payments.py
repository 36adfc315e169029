"""Payments' periodic work (being built: issue 15, payments helper)."""

from __future__ import annotations

from typing import Any


async def reconcile_stripe(ctx: dict[str, Any]) -> int:
    return 0
