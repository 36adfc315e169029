"""Dunning end to end on a simulated clock, against localstripe with a card that always fails
(4000000000000341): the renewal invoice's charge fails when it is issued, is retried on days 1, 3
and 5 after that first failure and not in between, and on day 7 the organization is suspended
(usage answers SUSPENDED through the API, reads still work); a good card made the default and
`payInvoice` pay it, and usage works again at once. Every step happens once although two job runs
race for it each time, and repeating a step (or the payment) does nothing more."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from jobs.invoices import issue_invoices, run_dunning
from tests.conftest import Service
from tests.invoicing_setup import (
    AFTER_END,
    INVOICE,
    Jobs,
    current_period_end,
    default_card,
    invoices,
    jobs_of,
    subscribed,
)
from tests.ledger_api import Ledger
from tests.stripe_fake import CARD_3DS, CARD_CHARGES_FAIL, CARD_OK, FakeStripe

PAY = f"""mutation($input: PayInvoiceInput!) {{
  payInvoice(input: $input) {{ invoice {{ {INVOICE} }} payment {{ id status }} }} }}"""


async def _dunning(pool: asyncpg.Pool, invoice_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM dunning WHERE invoice_id = $1", UUID(invoice_id))
    assert row is not None
    return row


async def _attempts(pool: asyncpg.Pool, invoice_id: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT request_key, status FROM payments WHERE invoice_id = $1"
        " ORDER BY request_key LIKE '%:pay:%', created_at",
        UUID(invoice_id),
    )
    return [(row["request_key"].split(":", 2)[2], row["status"]) for row in rows]


async def _keyed(pool: asyncpg.Pool, org: Ledger, key: str) -> int:
    found: int = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2", UUID(org.org), key
    )
    return found


async def _alerts(pool: asyncpg.Pool, org: Ledger) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT kind, state FROM alert_events WHERE org_id = $1 ORDER BY committed_at, id",
                            UUID(org.org))  # fmt: skip
    return [(row["kind"], row["state"]) for row in rows]


async def _twice(jobs: Jobs) -> list[Any]:
    return list(await asyncio.gather(run_dunning(jobs.ctx()), run_dunning(jobs.ctx())))


async def test_retries_on_days_1_3_5_suspension_on_day_7_and_a_payment_restores_at_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    service = paying_service
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-build")  # $495 a month
        await default_card(jobs, org.org, stripe.card(CARD_CHARGES_FAIL))
        jobs.now = await current_period_end(service, org) + AFTER_END
        await jobs.turnover()
        await org.accepted("grantCredits", amount="100")  # something to use now (the new period starts later)
        assert await issue_invoices(jobs.ctx()) == 1
        [invoice] = await invoices(service, org)
        invoice_id, first = invoice["id"], jobs.now
        assert (invoice["status"], invoice["amountDue"]["minorUnits"]) == ("OPEN", "49500")
        assert await _attempts(pool, invoice_id) == [("1", "failed")]
        row = await _dunning(pool, invoice_id)
        assert (row["first_failed_at"], row["attempts"], row["next_attempt_at"]) == (
            first,
            1,
            first + timedelta(days=1),
        )

        # Retries on days 1, 3 and 5 after the first failure, none in between, each once.
        for days, attempts in ((0.5, 1), (1, 2), (2, 2), (3, 3), (4, 3), (5, 4), (6.9, 4)):
            jobs.now = first + timedelta(days=days, minutes=1)
            await _twice(jobs)
            assert await _attempts(pool, invoice_id) == [(str(n), "failed") for n in range(1, attempts + 1)], days
            row = await _dunning(pool, invoice_id)
            assert (row["attempts"], row["suspended_at"]) == (attempts, None), days
        assert row["next_attempt_at"] is None
        await org.accepted("recordUsage", product="sms.message", quantity="1")  # not suspended yet

        # Day 7: suspended once; usage refused, reads work.
        jobs.now = first + timedelta(days=7, minutes=1)
        await _twice(jobs)
        await _twice(jobs)
        assert (await _dunning(pool, invoice_id))["suspended_at"] == jobs.now
        refused = await org.rejected("recordUsage", "SUSPENDED", product="sms.message", quantity="1")
        assert invoice["number"] in refused["rejection"]["message"]
        assert (await org.balance())["available"] == "99"
        assert await _keyed(pool, org, f"dunning:{invoice_id}:suspend") == 1
        jobs.now = first + timedelta(days=9)
        await _twice(jobs)
        assert len(await _attempts(pool, invoice_id)) == 4  # no charge after the schedule

        # A good card, made the default, and the invoice paid now: usage works at once.
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        pay = {"organizationId": org.org, "invoiceId": invoice_id, "idempotencyKey": "pay-after-card-update"}
        paid = await service.graphql(PAY, input=pay)
        assert "errors" not in paid, paid
        shown = paid["data"]["payInvoice"]
        assert (shown["invoice"]["status"], shown["invoice"]["paidAt"] is not None) == ("PAID", True)
        assert shown["payment"]["status"] == "SUCCEEDED"
        await org.accepted("recordUsage", product="sms.message", quantity="1")
        again = await service.graphql(PAY, input=pay)
        assert again["data"]["payInvoice"]["invoice"]["status"] == "PAID"
        assert again["data"]["payInvoice"]["payment"] == shown["payment"]
        await _twice(jobs)
    tried = await _attempts(pool, invoice_id)
    assert tried == [*((str(n), "failed") for n in range(1, 5)), ("pay:pay-after-card-update", "succeeded")]
    assert (await _dunning(pool, invoice_id))["resolved_at"] is not None
    assert await _keyed(pool, org, f"dunning:{invoice_id}:restore") == 1
    assert await _keyed(pool, org, f"dunning:{invoice_id}:suspend") == 1
    alerts = await _alerts(pool, org)
    assert alerts.count(("payment_failed", "triggered")) == 4
    assert alerts.count(("suspended", "triggered")) == 1
    # Resolved by the payment, both in one batch (so in either order of their ids).
    assert sorted(alerts[-2:]) == [("payment_failed", "resolved"), ("suspended", "resolved")]


async def test_a_card_invoice_without_a_card_is_dunned_and_a_declined_payment_says_why(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    service = paying_service
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-build")
        jobs.now = await current_period_end(service, org) + AFTER_END
        await jobs.turnover()
        assert await issue_invoices(jobs.ctx()) == 1
        [invoice] = await invoices(service, org)
        row = await _dunning(pool, invoice["id"])
        assert (row["attempts"], row["first_failed_at"]) == (1, jobs.now)  # no payment method: a failed attempt
        assert await _attempts(pool, invoice["id"]) == []
        await default_card(jobs, org.org, stripe.card(CARD_CHARGES_FAIL))
        pay = {"organizationId": org.org, "invoiceId": invoice["id"], "idempotencyKey": "try"}
        declined = await service.graphql(PAY, input=pay)
        [error] = declined["errors"]
        assert (error["extensions"]["code"], error["extensions"]["declineCode"]) == (
            "PAYMENT_DECLINED",
            "card_declined",
        )
        # The customer's own failed payment leaves the renewal's schedule as it was.
        assert (await _dunning(pool, invoice["id"]))["attempts"] == 1
        other = await subscribed(service, "meclabs-build")
        wrong = await service.graphql(PAY, input={**pay, "organizationId": other.org})
        assert wrong["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_card_that_needs_authentication_off_session_is_a_failed_attempt(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    service = paying_service
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_3DS))
        jobs.now = await current_period_end(service, org) + AFTER_END
        await jobs.turnover()
        assert await issue_invoices(jobs.ctx()) == 1
        await issue_invoices(jobs.ctx())  # the next run charges nothing more
    [invoice] = await invoices(service, org)
    assert invoice["status"] == "OPEN"
    assert await _attempts(pool, invoice["id"]) == [("1", "requires_action")]
    row = await _dunning(pool, invoice["id"])
    assert (row["attempts"], row["next_attempt_at"]) == (1, jobs.now + timedelta(days=1))
