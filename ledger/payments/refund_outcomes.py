"""What a `charge.refunded` event does (refunds made outside this service, or confirming ours).
Called for every such event the webhook or the poll applies, so it must be idempotent.

Placeholder by the payments helper: the refunds helper replaces this body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ledger.payments.context import PaymentContext

log = logging.getLogger(__name__)


async def charge_refunded(ctx: PaymentContext, charge: Mapping[str, Any]) -> None:
    log.info("charge %s refunded (intent %s)", charge.get("id"), charge.get("payment_intent"))
