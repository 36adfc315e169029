"""The payments a job may make: a `PaymentContext` from the job context, or None without a Stripe
key (`ctx["gateway"]` None)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobs.clock import job_now
from ledger.payments.context import PaymentContext


def payment_context(ctx: dict[str, Any], now: datetime | None = None) -> PaymentContext | None:
    """`now` defaults to the job's clock, read here (only when payments are configured)."""
    gateway = ctx.get("gateway")
    if gateway is None:
        return None
    return PaymentContext(ctx["pool"], gateway, ctx["effects"], job_now(ctx) if now is None else now)
