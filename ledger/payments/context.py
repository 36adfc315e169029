"""What every payments function needs: the database, Stripe, the ledger's effects and the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ledger.payments.gateway import Gateway
from ledger.subscriptions.effects import Effects


@dataclass(frozen=True, slots=True)
class PaymentContext:
    pool: asyncpg.Pool
    gateway: Gateway
    effects: Effects
    now: datetime  # the request's or the job's time (a test's simulated clock)
