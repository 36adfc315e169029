"""Totals reconcile (issue 15): a simulated month of 50 organizations on mixed plans, with packs
bought through localstripe and overage, turned over and invoiced by the real jobs on a simulated
clock. Then every invoice line is recomputed here, independently, from the catalog's prices and
the ledger's own postings, to the cent; and the revenue report adds up to the invoices (breakage
included).

The month is the current one: it started 18 days ago, so the API's usage and payments (dated now)
fall inside it; the jobs' clock then jumps past its end (the turnover closes it, the invoice job
issues and charges every invoice through localstripe).
"""

from __future__ import annotations

import asyncio
import decimal
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from dateutil.relativedelta import relativedelta

from jobs.invoices import issue_invoices
from jobs.turnover import advance_turnover
from ledger import constants
from ledger.billing.catalog import Catalog, Interval
from ledger.billing.catalog_file import parse_catalog
from ledger.billing.money_format import format_minor, to_minor
from ledger.store.catalog_versions import load_catalog, save_catalog
from tests.conftest import Service
from tests.payments_support import jobs_context, pay
from tests.stripe_fake import FakeStripe
from tests.subscription_calls import call
from tests.test_invoice_pdf import pdf_text

# About 40 s alone; the bound leaves room for a machine busy with other suites.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Two products of the month beside the example catalog: a plan whose usage beyond its credits is
# overage (BrightMove-like), and a pack whose credits expire inside the month (breakage).
EXTRA_CATALOG = """
[[plans]]
key = "month-growth"
[[plans.versions]]
effective_at = 2000-01-01T00:00:00Z
name = "Growth"
price_monthly = "49"
credits = "5000"
credit_policy = "reset"
at_zero = "overage"
rank = 5

[[packs]]
key = "month-short"
[[packs.versions]]
effective_at = 2000-01-01T00:00:00Z
name = "Short top-up"
credits = "3000"
price = "7.35"
expires_after_days = 5
"""
ORGANIZATIONS = 50
CARD = "4242424242424242"
MICRO = 1_000_000


@dataclass
class Customer:
    org: str
    plan: str
    seats: int = 0
    product: str = "ai.tokens"
    usage: int = 0  # units of `product`
    pack: str | None = None
    upgrade_to: str | None = None
    seats_to: int | None = None


def cast() -> list[Customer]:
    """Who is on what: monthly plans of every kind, per-seat with seat changes, upgrades, packs
    (a third of them, into whose credits the usage goes) and overage. Usage stays within what a
    blocking plan's credits cover."""
    customers = []
    for i in range(ORGANIZATIONS):
        kind, pack = i % 5, i % 3 == 0
        if kind == 0:
            upgrade = "meclabs-sell" if i % 10 == 0 else None
            customer = Customer("", "meclabs-build", usage=4000 + 37 * i, upgrade_to=upgrade)
        elif kind == 1:
            customer = Customer("", "meclabs-sell", usage=17000 + 19 * i)
        elif kind == 2:
            seats = 3 + i % 4
            customer = Customer("", "seatsco-team", seats=seats, product="ai.assistant", usage=100 * seats - 20 + i % 7)
            customer.seats_to = seats + 2 if i % 10 == 2 else None
        elif kind == 3:
            customer = Customer("", "act3-creator", usage=30000 + 37 * i)
        else:
            customer = Customer("", "month-growth", usage=5000 + 1234 + 7 * i)  # beyond its 5,000 credits
        if pack:
            customer.pack = "seatsco-topup" if customer.plan == "seatsco-team" else "month-short"
            customer.usage += {"seatsco-team": 400, "month-growth": 3000}.get(customer.plan, 1500)
        customers.append(customer)
    return customers


def money(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)


async def graphql(service: Service, query: str, **variables: Any) -> dict[str, Any]:
    body = await service.graphql(query, **variables)
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


async def set_up(service: Service, stripe: FakeStripe, customer: Customer, index: int, anchor: datetime) -> None:
    created = await graphql(service, "mutation($n: String!) { createOrganization(input: {name: $n}) { id } }",
                            n=f"Month {index}")  # fmt: skip
    customer.org = created["createOrganization"]["id"]
    card = await asyncio.to_thread(stripe.card, CARD)
    attached = await pay(service, "attachPaymentMethod", "id", organizationId=customer.org, paymentMethodId=card,
                         makeDefault=True)  # fmt: skip
    assert "codes" not in attached, attached
    subscribed = await call(
        service, "subscribe", "id", organizationId=customer.org, plan=customer.plan, seats=customer.seats,
        anchor=anchor.isoformat(), idempotencyKey=f"month-{index}",
    )  # fmt: skip
    assert "codes" not in subscribed, subscribed
    if customer.plan == "month-growth":  # the plan's at_zero: the uncovered part is overage
        await graphql(
            service, "mutation($o: ID!, $k: String!) { setSpendingPolicy(input: {organizationId: $o, atZero: OVERAGE,"
            " idempotencyKey: $k}) { status } }", o=customer.org, k=f"policy-{index}",
        )  # fmt: skip
    if customer.upgrade_to:
        changed = await call(service, "changePlan", "changeId", organizationId=customer.org,
                             plan=customer.upgrade_to, idempotencyKey=f"up-{index}")  # fmt: skip
        assert "codes" not in changed, changed
    if customer.seats_to:
        changed = await call(service, "setSeats", "changeId", organizationId=customer.org, seats=customer.seats_to,
                             idempotencyKey=f"seats-{index}")  # fmt: skip
        assert "codes" not in changed, changed
    if customer.pack:
        bought = await pay(service, "buyCreditPack", "payment { status }", organizationId=customer.org,
                           pack=customer.pack, idempotencyKey=f"pack-{index}")  # fmt: skip
        assert bought.get("payment", {}).get("status") == "SUCCEEDED", bought
    usage = await graphql(
        service, "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { status rejection { code } } }",
        i={"organizationId": customer.org, "product": customer.product, "quantity": str(customer.usage),
           "idempotencyKey": f"usage-{index}"},
    )  # fmt: skip
    assert usage["recordUsage"]["status"] == "ACCEPTED", usage


async def test_a_month_of_fifty_organizations_reconciles(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    service = paying_service
    async with pool.acquire() as connection:
        await save_catalog(connection, parse_catalog(EXTRA_CATALOG), settings=False)
    catalog = await load_catalog(pool)
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(days=18)
    period_end = anchor + relativedelta(months=1)
    customers = cast()
    for first in range(0, ORGANIZATIONS, 10):  # ten at a time
        batch = range(first, first + 10)
        await asyncio.gather(*(set_up(service, stripe, customers[index], index, anchor) for index in batch))

    # The jobs' clock jumps past the month's end: the turnover closes it (the short packs' credits
    # expire) and charges the next; the invoice job issues every invoice and charges its card.
    clock = period_end + timedelta(seconds=constants.invoice_issue_delay_s + 60)
    async with jobs_context(service, clock=lambda: clock) as ctx:
        for _ in range(5):
            if not await advance_turnover(ctx):
                break
        assert await issue_invoices(ctx) == ORGANIZATIONS
        assert await issue_invoices(ctx) == 0  # once per (subscription, period)

    invoices = await _invoices(pool, anchor)
    assert len(invoices) == ORGANIZATIONS
    expected = [await _expected(pool, catalog, customer, anchor, period_end) for customer in customers]
    for customer, wanted in zip(customers, expected, strict=True):
        invoice = invoices[UUID(customer.org)]
        assert _by_kind(invoice["lines"]) == wanted, (customer, invoice["lines"])
        assert sum(line["amount"] for line in invoice["lines"]) == invoice["total"] == invoice["subtotal"]
        assert invoice["prepaid"] == wanted.get("pack", 0)
        assert invoice["amount_due"] == invoice["total"] - invoice["prepaid"]
        assert invoice["status"] == "paid" and invoice["paid_amount"] == invoice["amount_due"], invoice
    totals: dict[str, int] = defaultdict(int)
    for wanted in expected:
        for kind, amount in wanted.items():
            totals[kind] += amount
    assert totals["overage"] > 0 and totals["pack"] > 0 and totals["expired_credits"] > 0
    prorated = await pool.fetchval(_PRORATED)
    assert prorated == 10  # five upgrades and five seat increases
    await _revenue_adds_up(service, pool, anchor, period_end, invoices, totals)
    # Two invoices as their customers download them: with overage, and with a pack that expired.
    for kind in ("overage", "expired"):
        shown = next(i for i in invoices.values() if any(line["kind"] == kind for line in i["lines"]))
        await _pdf_shows(service, shown)


_PRORATED = """
SELECT count(*) FROM billing_charges WHERE idempotency_key LIKE 'seats:%' OR idempotency_key LIKE 'upgrade:%'
"""
_INVOICES = """
SELECT i.id, i.org_id, i.status, i.currency, i.subtotal, i.tax, i.total, i.prepaid, i.amount_due,
       p.amount AS paid_amount
FROM invoices i LEFT JOIN payments p ON p.id = i.payment_id
WHERE i.period_start = $1
"""
_LINES = "SELECT invoice_id, kind, amount, credits, prepaid, source FROM invoice_lines ORDER BY invoice_id, line_no"


async def _invoices(pool: asyncpg.Pool, anchor: datetime) -> dict[UUID, dict[str, Any]]:
    invoices = {row["id"]: {**dict(row), "lines": []} for row in await pool.fetch(_INVOICES, anchor)}
    for row in await pool.fetch(_LINES):
        invoices[row["invoice_id"]]["lines"].append(dict(row))
    return {invoice["org_id"]: invoice for invoice in invoices.values()}


_SUBSCRIPTION_KINDS = {"plan", "seats", "kits", "proration"}


def _by_kind(lines: list[dict[str, Any]]) -> dict[str, int]:
    """An invoice's lines as the test expects them: money per kind (the subscription's together),
    the expired credits, and a zero tax line."""
    found: dict[str, int] = defaultdict(int)
    for line in lines:
        kind = "subscription" if line["kind"] in _SUBSCRIPTION_KINDS else line["kind"]
        if kind == "tax":
            assert line["amount"] == 0 and line["source"] == "tax:none"
        elif kind == "expired":
            assert line["amount"] == 0
            found["expired_credits"] += line["credits"]
        else:
            found[kind] += line["amount"]
    return dict(found)


def _fraction(at: datetime, start: datetime, end: datetime) -> Fraction:
    micro = timedelta(microseconds=1)
    return Fraction((end - at) // micro, (end - start) // micro)


def _cents(amount: Decimal | Fraction) -> int:
    exact = amount if isinstance(amount, Decimal) else Decimal(amount.numerator) / Decimal(amount.denominator)
    return to_minor(money(exact), "USD")


def _monthly(catalog: Catalog, key: str, at: datetime) -> Decimal:
    plan = catalog.plan_at(key, at)
    assert plan is not None
    price = plan.price(Interval.MONTHLY)
    assert price is not None
    return price


_PLAN_CHANGE = "SELECT at, plan_before, plan_after FROM plan_changes WHERE org_id = $1"
_SEAT_CHANGE = """
SELECT c.at, c.seats_before, c.seats_after FROM seat_changes c JOIN subscriptions s ON s.id = c.subscription_id
WHERE s.org_id = $1
"""
_OVERAGE = "SELECT coalesce(-sum(amount), 0)::bigint FROM ledger_postings WHERE org_id = $1 AND account = $2"
_PACKS_PAID = """
SELECT coalesce(sum(amount), 0)::bigint FROM payments WHERE org_id = $1 AND purpose = 'pack' AND status = 'succeeded'
"""
# A paid lot's credits by what moved them, from its postings: usage, and the expiry's breakage.
_PAID_LOTS = """
SELECT l.id, l.amount, l.expires_at, pay.amount AS basis,
       coalesce(sum(-p.amount) FILTER (WHERE t.command_type = 'record_usage'), 0)::bigint AS consumed,
       coalesce(sum(-p.amount) FILTER (WHERE t.command_type = 'expire'), 0)::bigint AS expired
FROM credit_lots l
JOIN payments pay ON pay.org_id = l.org_id AND pay.lot_id = l.id
JOIN ledger_postings p ON p.org_id = l.org_id AND p.lot_id = l.id
JOIN ledger_transactions t ON t.org_id = p.org_id AND t.id = p.transaction_id
WHERE l.org_id = $1 AND l.source = 'payment'
GROUP BY l.id, l.amount, l.expires_at, pay.amount
"""


async def _expected(
    pool: asyncpg.Pool, catalog: Catalog, customer: Customer, anchor: datetime, period_end: datetime
) -> dict[str, int]:
    """What the customer's invoice must say, from the catalog's prices and the ledger's postings."""
    org = UUID(customer.org)
    price = _monthly(catalog, customer.plan, anchor)
    plan = catalog.plan_at(customer.plan, anchor)
    assert plan is not None
    seats = max(customer.seats - plan.seats_included, 0) if plan.per_seat else 1
    subscription = _cents(price * seats)
    for change in await pool.fetch(_PLAN_CHANGE, org):
        before, after = (_monthly(catalog, change[key], anchor) for key in ("plan_before", "plan_after"))
        subscription += _cents(Fraction(after - before) * _fraction(change["at"], anchor, period_end))
    for change in await pool.fetch(_SEAT_CHANGE, org):
        share = _fraction(change["at"], anchor, period_end)
        subscription += _cents(Fraction(price) * (change["seats_after"] - change["seats_before"]) * share)
    wanted = {"subscription": subscription}
    if customer.pack:
        pack = catalog.pack_at(customer.pack, anchor)
        assert pack is not None
        paid = _cents(pack.price * (1 + pack.surcharge_percent / 100))
        assert await pool.fetchval(_PACKS_PAID, org) == paid
        wanted["pack"] = paid
    overage = await pool.fetchval(_OVERAGE, org, f"overage:{customer.product}")
    if overage:
        assert customer.plan == "month-growth"
        (rate,) = [rate for rate in catalog.rates[customer.product] if not rate.dimensions]
        assert rate.overage_price_per_unit is not None
        # Independently of the postings too: the usage beyond the plan's credits and the pack's.
        covered = 5000 + (3000 if customer.pack else 0)
        assert overage == (customer.usage - covered) * MICRO
        units = Fraction(overage, MICRO) / Fraction(rate.credits_per_unit)
        wanted["overage"] = _cents(units * Fraction(rate.overage_price_per_unit))
    for lot in await pool.fetch(_PAID_LOTS, org):
        if lot["expires_at"] <= period_end:
            assert lot["expired"] == lot["amount"] - lot["consumed"]
            if lot["expired"]:
                wanted["expired_credits"] = wanted.get("expired_credits", 0) + lot["expired"]
        else:
            assert lot["expired"] == 0
    return wanted


async def _pdf_shows(service: Service, invoice: dict[str, Any]) -> None:
    data = await graphql(service, "query($id: ID!) { invoice(id: $id) { number pdfUrl } }", id=str(invoice["id"]))
    response = await service.client.get(data["invoice"]["pdfUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content)
    assert f"Invoice {data['invoice']['number']} PAID" in text
    for line in invoice["lines"]:
        if line["kind"] != "tax":
            assert format_minor(line["amount"], "USD") in text
    assert f"Total {format_minor(invoice['total'], 'USD')}" in text
    assert f"Already paid {format_minor(-invoice['prepaid'], 'USD')}" in text
    assert f"Amount due {format_minor(invoice['amount_due'], 'USD')}" in text
    if any(line["kind"] == "expired" for line in invoice["lines"]):
        assert "credits expired unused: shown, not charged, not refunded." in text


_REVENUE = """
query($start: DateTime!, $end: DateTime!) {
  revenueReport(periodStart: $start, periodEnd: $end) {
    currencies { currency
      subscriptionRecognized { money { minorUnits } } subscriptionDeferred { money { minorUnits } }
      purchasedRecognized { money { minorUnits } } breakage { money { minorUnits } sources }
      purchasedDeferred { money { minorUnits } } overageBilled { money { minorUnits } } refunds { money { minorUnits } }
      recognized { minorUnits } deferredOpening { minorUnits } deferredBilled { minorUnits }
      deferredRecognized { minorUnits } deferredRefunded { minorUnits } deferredClosing { minorUnits } }
  }
}
"""
_ALL_PAID_LOTS = _PAID_LOTS.replace("WHERE l.org_id = $1 AND", "WHERE")


def _share(basis: int, part: int, whole: int) -> int:
    exact = Decimal(basis) * part / whole
    return int(exact.quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP))


async def _revenue_adds_up(
    service: Service,
    pool: asyncpg.Pool,
    start: datetime,
    end: datetime,
    invoices: dict[UUID, dict[str, Any]],
    totals: dict[str, int],
) -> None:
    """The platform's report for the month: the subscription and overage lines recognized, the
    packs' money split between credits used, breakage and what stays deferred, recomputed here
    from each paid lot's postings at its payment's amount; all of it adds up to the invoices."""
    data = await graphql(service, _REVENUE, start=start.isoformat(), end=end.isoformat())
    (usd,) = data["revenueReport"]["currencies"]
    figure = {name: int(value["money"]["minorUnits"]) for name, value in usd.items() if isinstance(value, dict)
              and "money" in value}  # fmt: skip
    sums = {name: int(value["minorUnits"]) for name, value in usd.items() if isinstance(value, dict)
            and "minorUnits" in value}  # fmt: skip
    assert figure["subscriptionRecognized"] == totals["subscription"]
    assert figure["subscriptionDeferred"] == 0  # every charge of the month is the month's
    assert figure["overageBilled"] == totals["overage"]
    assert figure["refunds"] == 0
    recognized = breakage = deferred = expiries = 0
    for lot in await pool.fetch(_ALL_PAID_LOTS):
        used = _share(lot["basis"], lot["consumed"], lot["amount"])
        recognized += used
        if lot["expired"]:
            breakage += lot["basis"] - used
            expiries += 1
        else:
            deferred += lot["basis"] - used
    assert (figure["purchasedRecognized"], figure["breakage"], figure["purchasedDeferred"]) == (
        recognized, breakage, deferred,
    )  # fmt: skip
    assert breakage > 0 and expiries > 0 and len(usd["breakage"]["sources"]) == expiries
    assert recognized + breakage + deferred == totals["pack"]
    # The invoices, to the cent: what the month recognized (breakage included) and what it defers.
    invoiced = sum(invoice["total"] for invoice in invoices.values())
    assert invoiced == totals["subscription"] + totals["pack"] + totals["overage"]
    assert sums["recognized"] + sums["deferredClosing"] == invoiced
    assert sums["recognized"] == totals["subscription"] + totals["overage"] + recognized + breakage
    assert sums["deferredOpening"] == 0 and sums["deferredBilled"] == totals["subscription"] + totals["pack"]
    released = sums["deferredRecognized"] + figure["breakage"] + sums["deferredRefunded"] + sums["deferredClosing"]
    assert sums["deferredOpening"] + sums["deferredBilled"] == released
