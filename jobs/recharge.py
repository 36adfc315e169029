"""Auto-recharge's and renewal notices' periodic work (being built: issue 15, recharge helper)."""

from __future__ import annotations

from typing import Any


async def sweep_recharges(ctx: dict[str, Any]) -> int:
    return 0


async def send_renewal_notices(ctx: dict[str, Any]) -> int:
    return 0
