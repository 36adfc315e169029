"""The dunning runner: retries due are charged again, and an invoice still unpaid on the 7th day
after its first failed charge suspends its organization (`ledger.billing.dunning` is the schedule).

Safe with several job workers and with a run repeated: a retry is claimed under the row's lock
(`FOR UPDATE SKIP LOCKED`) and leased for `retry_lease_s` before the lock is let go, and its charge's
request key names the attempt (`invoice:<id>:<n>`), so two runs that both reach it find one
payment; the payment's hooks (`ledger.invoicing.settlement`) record the outcome and set the next
attempt's time. A suspension is sent under the row's lock, keyed `dunning:<invoice>:suspend` (its
alert `dunning:<invoice>:suspended`), and recorded in the same transaction: a payment that arrives
meanwhile waits for it, then lifts it (`invoice_paid`). Suspending and restoring an organization
are both decided under its lock (`dunning_store.lock_organization`): a payment lifts a suspension
only when no other unpaid invoice of the organization holds one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from ledger import constants
from ledger.billing.dunning import SUSPEND_DAYS
from ledger.billing.invoice import InvoiceStatus
from ledger.core.commands import AlertKind, RaiseBillingAlert, SetSuspension
from ledger.core.money import MicroCredits
from ledger.invoicing import dunning_store, store
from ledger.invoicing.collect import collect
from ledger.invoicing.dunning_store import Dunning
from ledger.invoicing.settlement import send
from ledger.payments.context import PaymentContext
from ledger.payments.store import PaymentStatus

log = logging.getLogger(__name__)

# A claimed retry is not claimed again for this long: its charge and hooks finish well within it;
# one that did not (a crash) is tried again then, under the same request key.
retry_lease_s = 600


@dataclass(frozen=True, slots=True)
class DunningRun:
    retried: int = 0
    suspended: int = 0


async def _claim_retries(pool: asyncpg.Pool, ctx: PaymentContext, limit: int) -> list[Dunning]:
    async with pool.acquire() as connection, connection.transaction():
        due = await dunning_store.retries_due(connection, ctx.now, limit)
        for row in due:
            await dunning_store.set_next_attempt(connection, row.invoice_id, ctx.now + timedelta(seconds=retry_lease_s))
    return due


async def retry_due(ctx: PaymentContext, limit: int = constants.dunning_per_run_max) -> int:
    """Charge again each invoice whose next attempt is due; how many were tried."""
    tried = 0
    for row in await _claim_retries(ctx.pool, ctx, limit):
        invoice = await store.load_invoice(ctx.pool, row.invoice_id)
        if invoice is None or invoice.status is not InvoiceStatus.OPEN:
            await dunning_store.resolve(ctx.pool, row.invoice_id, ctx.now)
            continue
        attempt = row.attempts + 1
        payment = await collect(ctx, invoice, attempt)
        if payment is not None and payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
            # The hook recorded it already; a replayed payment (a crash after the charge) did not.
            await dunning_store.record_failure(ctx.pool, invoice.id, invoice.organization_id, attempt,
                                               payment.created_at)  # fmt: skip
        tried += 1
    return tried


async def suspend_due(ctx: PaymentContext, limit: int = constants.dunning_per_run_max) -> int:
    """Suspend the organization of each invoice unpaid `SUSPEND_DAYS` after its first failure."""
    suspended = 0
    failed_before = ctx.now - timedelta(days=SUSPEND_DAYS)
    async with ctx.pool.acquire() as connection, connection.transaction():
        due = await dunning_store.suspensions_due(connection, failed_before, limit)
        # The organizations' locks, in one order (two runs never wait on each other in a circle):
        # a payment of another invoice deciding to restore one of them waits for this run.
        for organization_id in sorted({row.organization_id for row in due}):
            await dunning_store.lock_organization(connection, organization_id)
        for row in due:
            invoice = await store.load_invoice(connection, row.invoice_id)
            if invoice is None or invoice.status is not InvoiceStatus.OPEN:
                await dunning_store.resolve(connection, row.invoice_id, ctx.now)
                continue
            name = f"suspended: invoice {invoice.number} unpaid {SUSPEND_DAYS} days after its first failed payment"
            alert = RaiseBillingAlert(AlertKind.SUSPENDED, name, value=MicroCredits(invoice.amount_due))
            await send(ctx, invoice.organization_id, [
                (f"dunning:{invoice.id}:suspend", SetSuspension(True, invoice.number)),
                (f"dunning:{invoice.id}:suspended", alert),
            ])  # fmt: skip
            await dunning_store.mark_suspended(connection, invoice.id, ctx.now)
            log.warning("organization %s suspended: invoice %s unpaid", invoice.organization_id, invoice.number)
            suspended += 1
    return suspended


async def run_dunning(ctx: PaymentContext, limit: int = constants.dunning_per_run_max) -> DunningRun:
    """One run: the retries due, then the suspensions due."""
    retried = await retry_due(ctx, limit)
    return DunningRun(retried, await suspend_due(ctx, limit))
