"""Payments' periodic work: the Stripe reconciliation (`ledger.payments.reconcile`), every 30 s.

It polls Stripe's events, applies what the webhook did not, and settles payments whose outcome is
overdue. Any number of jobs workers may run it at once (every step is keyed). `now` is the job
context's clock (`ctx["clock"]`, the wall clock unless a test gives its own). Without a Stripe key
configured it does nothing.
"""

from __future__ import annotations

from typing import Any

from jobs.context import payment_context
from ledger.payments.reconcile import reconcile


async def reconcile_stripe(ctx: dict[str, Any]) -> int:
    payments = payment_context(ctx)
    return 0 if payments is None else await reconcile(payments)
