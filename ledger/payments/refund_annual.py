"""An annual plan's refund: within `annual_refund_window_days` of its billing period's start, the
payment of the period's invoice is refunded for the unused share of the plan's fee.

The fee is the invoice's plan and seat lines; the unused share is what is left of the invoice's
billing period at the refund's time, to the second (`Period.remaining_fraction`, the proration's
own rule), rounded half-up to the minor unit (`prorated_money`), and never more than the payment
less what was refunded already. Money only: no credits are taken back (those granted monthly so
far were the months used), and the subscription goes on until it is cancelled (`cancelSubscription`).
"""

from __future__ import annotations

from datetime import timedelta

from ledger import constants
from ledger.billing.calendar import Period
from ledger.billing.catalog import Interval
from ledger.billing.invoice import LineKind
from ledger.billing.money_format import from_minor, to_minor
from ledger.billing.proration import prorated_money
from ledger.core.errors import NotFound, NotRefundable
from ledger.invoicing.store import load_invoice
from ledger.payments.context import PaymentContext
from ledger.payments.store import Payment
from ledger.subscriptions.store import subscription_by_id

_FEE = (LineKind.PLAN, LineKind.SEATS)


async def annual_refund_amount(ctx: PaymentContext, payment: Payment) -> int:
    """The refund of an annual plan's invoice payment now, in minor units (refused outside the window)."""
    if payment.invoice_id is None:
        raise NotRefundable("the payment is for no invoice")
    invoice = await load_invoice(ctx.pool, payment.invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {payment.invoice_id}")
    subscription = await subscription_by_id(ctx.pool, invoice.subscription_id)
    if subscription is None or subscription.interval is not Interval.ANNUAL:
        raise NotRefundable("only an annual plan's fee is refundable (pro rata, within 30 days of its period's start)")
    window = timedelta(days=constants.annual_refund_window_days)
    if not invoice.period_start <= ctx.now <= invoice.period_start + window:
        raise NotRefundable("an annual plan is refundable within 30 days of its period's start")
    fee = sum(line.amount for line in invoice.lines if line.kind in _FEE)
    period = Period(0, invoice.period_start, invoice.period_end)
    unused = prorated_money(from_minor(fee, invoice.currency), period.remaining_fraction(ctx.now), invoice.currency)
    amount = min(to_minor(unused, invoice.currency), payment.amount - payment.refunded_amount)
    if amount <= 0:
        raise NotRefundable("nothing is left of the payment to refund")
    return amount
