"""Auto-recharge settings and refunds."""

from __future__ import annotations

import strawberry


@strawberry.type
class RechargeQueries:
    pass


@strawberry.type
class RechargeMutations:
    pass
