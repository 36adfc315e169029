"""Payments' periodic work: the Stripe reconciliation (`ledger.payments.reconcile`), every 30 s.

It polls Stripe's events, applies what the webhook did not, and settles payments whose outcome is
overdue. Any number of jobs workers may run it at once (every step is keyed). `now` is the job
context's clock (`ctx["clock"]`, the wall clock unless a test gives its own). Without a Stripe key
configured it does nothing.
"""

from __future__ import annotations

from typing import Any

from jobs.clock import job_now
from ledger.payments.context import PaymentContext
from ledger.payments.reconcile import reconcile


async def reconcile_stripe(ctx: dict[str, Any]) -> int:
    gateway = ctx.get("gateway")
    if gateway is None:
        return 0
    return await reconcile(PaymentContext(ctx["pool"], gateway, ctx["effects"], job_now(ctx)))
