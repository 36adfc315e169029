"""What a `charge.refunded` event does: the refunds Stripe confirms are marked succeeded.

Called for every such event the webhook or the poll applies (in any order, perhaps again), so it
only ever moves a pending refund to succeeded. A refund made outside this service (in Stripe's
dashboard) has no row here and changes nothing: its credits stay until someone refunds them here.
(No import of `ledger.payments.charges` or `ledger.payments.settle` here: they import this.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ledger.payments.context import PaymentContext
from ledger.payments.refunds_store import mark_succeeded

log = logging.getLogger(__name__)


def succeeded_refund_ids(charge: Mapping[str, Any]) -> list[str]:
    """The ids of the charge's refunds that Stripe says succeeded (`refunds.data`, when expanded)."""
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    if not isinstance(data, list):
        return []
    return [str(r["id"]) for r in data if isinstance(r, Mapping) and r.get("status") == "succeeded" and r.get("id")]


async def charge_refunded(ctx: PaymentContext, charge: Mapping[str, Any]) -> None:
    intent = charge.get("payment_intent")
    # A charge refunded in full: every refund of its intent went through.
    fully = charge.get("refunded") is True and isinstance(intent, str)
    ids = succeeded_refund_ids(charge)
    async with ctx.pool.acquire() as connection:
        await mark_succeeded(connection, ids, intent if fully and isinstance(intent, str) else None)
    log.info("charge %s refunded: refunds %s%s", charge.get("id"), ids, " (in full)" if fully else "")
