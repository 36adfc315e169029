"""Payment methods, credit packs and payments (Stripe)."""

from __future__ import annotations

import strawberry


@strawberry.type
class PaymentQueries:
    pass


@strawberry.type
class PaymentMutations:
    pass
