"""The revenue recognition report."""

from __future__ import annotations

import strawberry


@strawberry.type
class RevenueQueries:
    pass


@strawberry.type
class RevenueMutations:
    pass
