"""What an auto-recharge's failed payment does (called by `ledger.payments.settle.settle_intent` on
every road, so it must be idempotent).

Placeholder by the payments helper: the recharge helper replaces this body.
"""

from __future__ import annotations

import logging

from ledger.payments.context import PaymentContext
from ledger.payments.store import Payment

log = logging.getLogger(__name__)


async def recharge_failed(ctx: PaymentContext, payment: Payment) -> None:
    log.info("recharge payment %s failed (%s)", payment.id, payment.decline_code)
