"""Invoices end to end, against the real service, ledger worker, PostgreSQL, Redis and localstripe,
with the real jobs on a simulated clock: one invoice per (subscription, period) even when two job
runs issue at once; every kind of line (the plan's fee, a proration, a pack, overage per SKU at its
overage rate, paid credits that expired at 0, the zero tax line) and totals that are their sums; a
card customer charged once and the invoice paid; a Net-30 contract invoiced with a due date and no
charge; the API's reads, and another organization's invoice as NOT_FOUND."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from jobs.invoices import issue_invoices, run_dunning
from ledger.billing.money_format import to_minor
from ledger.core.commands import GrantCredits, LotKind, LotSource, LotTerms
from ledger.core.entries import Status
from ledger.core.money import MicroCredits
from ledger.directory.api_keys import create_api_key
from ledger.directory.roles import Role
from ledger.payments.charges import charge
from ledger.payments.packs import pack_charge
from ledger.payments.store import PaymentStatus
from ledger.store.catalog_versions import load_catalog
from ledger.subscriptions.effects import LedgerEffect
from tests.conftest import Service
from tests.invoicing_setup import AFTER_END, INVOICE, current_period_end, default_card, invoices, jobs_of, subscribed
from tests.stripe_fake import CARD_OK, FakeStripe
from tests.subscription_calls import call

CREDIT = 1_000_000


async def _proration_cents(pool: asyncpg.Pool, organization_id: str) -> int:
    amount = await pool.fetchval(
        "SELECT amount FROM billing_charges WHERE org_id = $1 AND kind = 'proration'", UUID(organization_id)
    )
    return to_minor(amount, "USD")


async def test_one_invoice_per_period_with_every_line_and_the_card_charged(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    service = paying_service
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-sell")  # $995 a month, 18,000 credits
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        await org.accepted("setSpendingPolicy", atZero="OVERAGE")
        # A pack of 1,000 SMS for $40, bought by card (only for sms.message, after the base credits).
        catalog = await load_catalog(pool)
        pack = catalog.pack_at("brightmove-sms-1000", datetime.now(UTC))
        assert pack is not None
        request = pack_charge(pack, organization_id=UUID(org.org), request_key="sms-pack", payment_method_id=None,
                              off_session=True)  # fmt: skip
        assert (await charge(jobs.payments(), request)).status is PaymentStatus.SUCCEEDED
        # 18,500 SMS: the base credits, then 500 of the pack; 2,000 tokens: all overage ($0.0015 each);
        # 600 SMS: the pack's last 500, then 100 of overage ($0.06 each).
        await org.accepted("recordUsage", product="sms.message", quantity="18500")
        await org.accepted("recordUsage", product="ai.tokens", quantity="2000")
        used = await org.accepted("recordUsage", product="sms.message", quantity="600")
        assert used["details"]["overage_credits"] == "100"
        # Job sponsorships: all overage ($15 each); a credit-back takes its debit's overage back.
        await org.accepted("recordUsage", product="job.sponsorship", quantity="1")
        reversed_debit = await org.accepted("recordUsage", product="job.sponsorship", quantity="2")
        await org.accepted("creditBack", transactionId=reversed_debit["transactionId"])
        end = await current_period_end(service, org)
        # Paid credits that expire unused before the period's end: shown at 0, not refunded.
        paid_lot = GrantCredits(
            MicroCredits(250 * CREDIT), LotKind.PURCHASED, expires_at=end - timedelta(hours=1),
            terms=LotTerms(source=LotSource.PAYMENT, refundable=True, price_per_credit=Decimal("0.01"), currency="USD"),
        )  # fmt: skip
        [granted] = await jobs.effects.apply(UUID(org.org), [LedgerEffect("paid-lot", paid_lot, datetime.now(UTC))])
        assert granted.result.status is Status.ACCEPTED
        upgrade = await call(service, "changePlan", "changeId", organizationId=org.org, plan="meclabs-scale",
                             idempotencyKey="to-scale")  # fmt: skip
        assert "codes" not in upgrade, upgrade

        jobs.now = end - timedelta(minutes=1)
        assert await issue_invoices(jobs.ctx()) == 0  # the period has not ended
        jobs.now = end + AFTER_END
        await jobs.turnover()  # the period's close (the paid lot expires), the next one's charge and grant
        issued = await asyncio.gather(issue_invoices(jobs.ctx()), issue_invoices(jobs.ctx()))
        assert sorted(issued) == [0, 1]
        assert await issue_invoices(jobs.ctx()) == 0

    [invoice] = await invoices(service, org)
    proration = await _proration_cents(pool, org.org)
    assert proration > 0
    lines = [(line["kind"], int(line["money"]["minorUnits"]), line["credits"], line["prepaid"])
             for line in invoice["lines"]]  # fmt: skip
    assert lines == [
        ("PLAN", 99_500, None, False),
        ("PRORATION", proration, None, False),
        ("PACK", 4_000, None, True),
        ("OVERAGE", 300, "2000", False),  # ai.tokens
        ("OVERAGE", 1_500, "1", False),  # job.sponsorship: 3 used, 2 credited back
        ("OVERAGE", 600, "100", False),  # sms.message
        ("EXPIRED", 0, "250", False),
        ("TAX", 0, None, False),
    ]
    by_source = {line["source"]: line for line in invoice["lines"]}
    assert (by_source["overage:ai.tokens"]["unitPrice"], by_source["overage:ai.tokens"]["quantity"]) == (
        "0.0015",
        "2000",
    )
    assert (by_source["overage:sms.message"]["unitPrice"], by_source["overage:sms.message"]["quantity"]) == (
        "0.06",
        "100",
    )
    jobs_line = by_source["overage:job.sponsorship"]
    assert (jobs_line["unitPrice"], jobs_line["quantity"], jobs_line["money"]["value"]) == ("15", "1", "15.00")
    subtotal = 99_500 + proration + 4_000 + 300 + 1_500 + 600
    assert invoice["subtotal"]["minorUnits"] == str(subtotal)
    assert (invoice["tax"]["minorUnits"], invoice["grandTotal"]["minorUnits"]) == ("0", str(subtotal))
    assert (invoice["prepaid"]["minorUnits"], invoice["amountDue"]["minorUnits"]) == ("4000", str(subtotal - 4_000))
    assert invoice["amountDue"]["value"] == str(Decimal(subtotal - 4_000).scaleb(-2))
    assert (invoice["status"], invoice["collection"], invoice["currency"]) == ("PAID", "CHARGE_AUTOMATICALLY", "USD")
    assert invoice["number"].startswith(f"INV-{jobs.now.year}-") and len(invoice["number"]) == 15
    assert invoice["dueAt"] == invoice["issuedAt"] and invoice["paidAt"] is not None
    assert invoice["periodEnd"] == end.isoformat()
    assert invoice["pdfUrl"].startswith(f"/invoices/{invoice['id']}.pdf?expires=")
    # Charged once, for the amount due, however many runs collected it.
    payments = await pool.fetch("SELECT status, amount FROM payments WHERE invoice_id = $1", UUID(invoice["id"]))
    assert [(row["status"], row["amount"]) for row in payments] == [("succeeded", subtotal - 4_000)]
    assert await pool.fetchval("SELECT count(*) FROM invoice_lines WHERE invoice_id = $1", UUID(invoice["id"])) == 8


async def test_a_net_30_contract_is_invoiced_with_a_due_date_and_no_charge(
    service: Service, pool: asyncpg.Pool
) -> None:
    # No Stripe key configured: Net-30 invoicing does not need one.
    async with jobs_of(service) as jobs:
        assert jobs.gateway is None
        org = await subscribed(service, "meclabs-enterprise", days_ago=360, interval="ANNUAL")
        card = await subscribed(service, "meclabs-build", days_ago=27)  # its month ends before the contract year
        end = await current_period_end(service, org)
        jobs.now = end + AFTER_END
        await jobs.turnover()
        assert await issue_invoices(jobs.ctx()) == 2
        assert await run_dunning(jobs.ctx()) == 0
    # Without Stripe a card invoice is issued and left open (the first run with a key charges it).
    [left_open] = await invoices(service, card)
    assert (left_open["collection"], left_open["status"]) == ("CHARGE_AUTOMATICALLY", "OPEN")
    [invoice] = await invoices(service, org)
    assert (invoice["collection"], invoice["status"], invoice["paidAt"]) == ("SEND_INVOICE", "OPEN", None)
    issued = datetime.fromisoformat(invoice["issuedAt"])
    assert issued == jobs.now
    assert datetime.fromisoformat(invoice["dueAt"]) == issued + timedelta(days=30)
    assert [(line["kind"], line["money"]["value"]) for line in invoice["lines"]] == [
        ("PLAN", "35940.00"), ("TAX", "0.00"),
    ]  # fmt: skip
    assert invoice["amountDue"]["formatted"] == "$35,940.00"
    assert await pool.fetchval("SELECT count(*) FROM payments") == 0


async def test_reads_are_the_organizations_own(service: Service, pool: asyncpg.Pool) -> None:
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-enterprise", days_ago=360, interval="ANNUAL")
        jobs.now = await current_period_end(service, org) + AFTER_END
        await jobs.turnover()
        await issue_invoices(jobs.ctx())
    [invoice] = await invoices(service, org)
    pdf = await service.client.get(invoice["pdfUrl"])  # the signed link opens without credentials
    assert (pdf.status_code, pdf.headers["content-type"], pdf.content[:5]) == (200, "application/pdf", b"%PDF-")
    _, viewer = await create_api_key(pool, name="v", scope="organization", organization_id=UUID(org.org),
                                     role=Role.VIEWER)  # fmt: skip
    other = await subscribed(service, "meclabs-build")
    _, stranger = await create_api_key(pool, name="o", scope="organization", organization_id=UUID(other.org),
                                       role=Role.OWNER)  # fmt: skip
    query = f"query($id: ID!) {{ invoice(id: $id) {{ {INVOICE} }} }}"
    mine = await service.graphql(query, credentials=viewer, id=invoice["id"])
    assert mine["data"]["invoice"] == invoice
    theirs = await service.graphql(query, credentials=stranger, id=invoice["id"])
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    unknown = await service.graphql(query, credentials=viewer, id="6f1c2f0e-0000-4000-8000-000000000000")
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listed = await service.graphql("query($o: ID!) { invoices(organizationId: $o) { id } }", credentials=stranger,
                                   o=org.org)  # fmt: skip
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    paged = await service.graphql(
        "query($o: ID!, $b: DateTime) { invoices(organizationId: $o, first: 1, before: $b) { id } }",
        o=org.org, b=invoice["periodStart"],
    )  # fmt: skip
    assert paged["data"]["invoices"] == []
    too_many = await service.graphql("query($o: ID!) { invoices(organizationId: $o, first: 1000) { id } }", o=org.org)
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
