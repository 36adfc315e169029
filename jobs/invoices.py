"""Invoices' periodic work: every minute, issue the invoices of billing periods that ended and
charge the card invoices not yet charged (`issue_invoices`), and run dunning (`run_dunning`: the
retries due, the suspensions due, and the Net-N invoices that became overdue: one PAYMENT_FAILED
alert each).

Any number of jobs workers may run these at once: an invoice is issued once per (subscription,
period) under the subscription's lock and a unique key, a charge's request key names its attempt,
and dunning claims its rows with `FOR UPDATE SKIP LOCKED`; every ledger effect goes under a key
derived from the invoice. `now` is the job context's clock (`ctx["clock"]`, the wall clock unless a
test gives its own). Without a Stripe key (`ctx["gateway"]` None) card invoices are issued and left
open (logged); Net-N invoices are unaffected.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.clock import job_now
from jobs.context import payment_context
from ledger import constants
from ledger.invoicing import dunning
from ledger.invoicing.collect import collect_uncollected, uncollected
from ledger.invoicing.issue import issue_due
from ledger.invoicing.overdue import alert_overdue
from ledger.store.catalog_versions import load_catalog

log = logging.getLogger(__name__)


async def issue_invoices(ctx: dict[str, Any]) -> int:
    """Issue what is due by now, then charge the card invoices no payment was started for; returns
    how many invoices were issued."""
    now = job_now(ctx)
    pool = ctx["pool"]
    issued = await issue_due(pool, await load_catalog(pool), now, constants.invoices_per_run_max)
    payments = payment_context(ctx, now)
    if payments is not None:
        await collect_uncollected(payments, constants.invoices_per_run_max)
    elif waiting := await uncollected(pool, now, constants.invoices_per_run_max):
        log.warning("%d card invoice(s) left open: no Stripe key is configured", len(waiting))
    if issued:
        log.info("invoices at %s: %d issued", now.isoformat(), len(issued))
    return len(issued)


async def run_dunning(ctx: dict[str, Any]) -> int:
    """Alert the Net-N invoices that became overdue, retry the failed charges due and suspend the
    organizations due; returns how many steps ran."""
    now = job_now(ctx)
    overdue = await alert_overdue(ctx["pool"], ctx["effects"], now, constants.dunning_per_run_max)
    payments = payment_context(ctx, now)
    if payments is None:
        return overdue  # no charge was made, so none failed
    run = await dunning.run_dunning(payments, constants.dunning_per_run_max)
    if run.retried or run.suspended or overdue:
        log.info("dunning: %d retried, %d suspended, %d overdue", run.retried, run.suspended, overdue)
    return run.retried + run.suspended + overdue
