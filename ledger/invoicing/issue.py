"""Issuing invoices: at each billing period's end, one invoice per (subscription, period).

Which periods: those whose turnover recorded a 'charge' fact (every billing period's start but a
trial's) and that ended at least `invoice_issue_delay_s` ago (usage sent just before the end is
journaled by then), once the turnover has decided everything up to the period's end (its last
credit period's close, which expires the lots ending then). A trial's periods record no charge
fact and are not invoiced; a period with a fact but nothing to bill (a custom plan without usage)
is issued at zero and paid at once, so every billing period has its document.

Each run reads only the charge facts not yet invoiced (`period_facts.invoiced`, set in the
invoice's transaction; a partial index holds just those), within `invoice_look_back_days`.

Exactly once with any number of job workers: the subscription's row is locked (`FOR UPDATE SKIP
LOCKED`: a run that finds it held, by another run or by the turnover, moves on and the next run
issues it), the period is checked for an invoice under that lock, and `invoices_one_per_period`
guards the write. Numbers come from the `invoice_numbers` sequence (`INV-<year>-<6 digits>`: the
year of issue, then one sequence for all years, never reused, gaps possible).

Collection follows the plan in force at the period's start: `invoice_terms_days` N sends it Net-N
(due N days after issue, no charge); otherwise the card is charged (`ledger.invoicing.collect`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.catalog import Catalog, Plan
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, TaxPolicy
from ledger.billing.invoice_assembly import assemble
from ledger.core.errors import InvalidCommand
from ledger.invoicing import store
from ledger.invoicing.period_inputs import period_inputs
from ledger.subscriptions import store as subscriptions

log = logging.getLogger(__name__)

_DUE = """
SELECT f.subscription_id, f.org_id, f.period_start, f.period_end
FROM period_facts f JOIN subscriptions s ON s.id = f.subscription_id
WHERE f.reason = 'charge' AND NOT f.invoiced AND f.period_end <= $1 AND f.period_end > $3
  AND s.turnover_decided_until >= f.period_end
ORDER BY f.period_end, f.subscription_id
LIMIT $2
"""
_LOCK = "SELECT id FROM subscriptions WHERE id = $1 FOR UPDATE SKIP LOCKED"
# Written with the invoice (or when a run finds it issued): the fact leaves the cron's index.
_INVOICED = """
UPDATE period_facts SET invoiced = true
WHERE subscription_id = $1 AND period_start = $2 AND reason = 'charge' AND NOT invoiced
"""


@dataclass(frozen=True, slots=True)
class Due:
    subscription_id: UUID
    organization_id: UUID
    period_start: datetime
    period_end: datetime


async def periods_due(connection: asyncpg.Connection | asyncpg.Pool, now: datetime, limit: int) -> list[Due]:
    """Ended billing periods without an invoice, oldest first (within `invoice_look_back_days`)."""
    ended_by = now - timedelta(seconds=constants.invoice_issue_delay_s)
    look_back = now - timedelta(days=constants.invoice_look_back_days)
    rows = await connection.fetch(_DUE, ended_by, limit, look_back)
    return [Due(row["subscription_id"], row["org_id"], row["period_start"], row["period_end"]) for row in rows]


def _overage_price(catalog: Catalog, at: datetime) -> Callable[[str], Decimal | None]:
    def price(product: str) -> Decimal | None:
        rate = catalog.rate_at(product, at)
        return None if rate is None else rate.overage_price_per_unit

    return price


def build_invoice(
    due: Due, plan: Plan | None, currency: str, lines: tuple[InvoiceLine, ...], number: str, now: datetime
) -> Invoice:
    """The invoice as issued at `now`: Net-N from the plan's terms, else due now and charged."""
    terms = plan.invoice_terms_days if plan is not None else None
    collection = Collection.CHARGE_AUTOMATICALLY if terms is None else Collection.SEND_INVOICE
    invoice = Invoice(
        id=uuid.uuid4(), organization_id=due.organization_id, subscription_id=due.subscription_id, number=number,
        period_start=due.period_start, period_end=due.period_end, currency=currency, collection=collection,
        status=InvoiceStatus.OPEN, issued_at=now, due_at=now + timedelta(days=terms or 0), lines=lines,
    )  # fmt: skip
    if invoice.amount_due == 0:
        # Nothing left to pay (no charge, or all prepaid): paid as issued.
        return replace(invoice, status=InvoiceStatus.PAID, paid_at=now)
    return invoice


async def issue(
    connection: asyncpg.Connection, catalog: Catalog, due: Due, now: datetime, tax: TaxPolicy | None = None
) -> Invoice | None:
    """Issue the period's invoice, in one transaction; None when another run holds the subscription
    or the period has its invoice already."""
    async with connection.transaction():
        if await connection.fetchval(_LOCK, due.subscription_id) is None:
            return None
        await connection.execute(_INVOICED, due.subscription_id, due.period_start)
        if await store.invoice_of_period(connection, due.subscription_id, due.period_start) is not None:
            return None
        subscription = await subscriptions.subscription_by_id(connection, due.subscription_id)
        assert subscription is not None, "a period fact's subscription exists"
        plan = catalog.plan_at(subscription.segment_at(due.period_start).plan_key, due.period_start)
        currency = plan.currency if plan is not None else catalog.settings.currency
        inputs = await period_inputs(
            connection, due.organization_id, due.subscription_id, due.period_start, due.period_end,
            _overage_price(catalog, due.period_start), currency,
        )  # fmt: skip
        lines = assemble(currency, inputs.charges, inputs.overage, inputs.expired, tax)
        invoice = build_invoice(due, plan, currency, lines, await store.next_number(connection, now.year), now)
        if not await store.insert_invoice(connection, invoice):
            return None
    log.info("issued invoice %s (%s) for subscription %s, %s to %s: %s %d due", invoice.number,
             invoice.collection.value, due.subscription_id, due.period_start.isoformat(),
             due.period_end.isoformat(), invoice.currency, invoice.amount_due)  # fmt: skip
    return invoice


async def issue_due(
    pool: asyncpg.Pool, catalog: Catalog, now: datetime, limit: int = constants.invoices_per_run_max
) -> list[Invoice]:
    """Issue the invoices due by `now` (at most `limit`); a period whose facts cannot be invoiced
    (a charge in another currency, a fraction of a cent) is logged and left for an operator."""
    issued: list[Invoice] = []
    async with pool.acquire() as connection:
        for due in await periods_due(connection, now, limit):
            try:
                invoice = await issue(connection, catalog, due, now)
            except InvalidCommand as error:
                log.error("the invoice of subscription %s for %s cannot be issued: %s", due.subscription_id,
                          due.period_start.isoformat(), error)  # fmt: skip
                continue
            if invoice is not None:
                issued.append(invoice)
    return issued
