"""What an invoice's payment outcome does to the invoice and its dunning (called by
`ledger.payments.settle.settle_intent` on every road, so each hook must be idempotent).

Placeholder by the payments helper: the invoices helper replaces these bodies.
"""

from __future__ import annotations

import logging

from ledger.payments.context import PaymentContext
from ledger.payments.store import Payment

log = logging.getLogger(__name__)


async def invoice_paid(ctx: PaymentContext, payment: Payment) -> None:
    log.info("invoice %s paid by payment %s", payment.invoice_id, payment.id)


async def invoice_payment_failed(ctx: PaymentContext, payment: Payment) -> None:
    log.info("invoice %s: payment %s failed (%s)", payment.invoice_id, payment.id, payment.decline_code)
