"""An invoice is charged once (against localstripe): five payInvoice calls at once with five keys,
or payInvoice racing the dunning retry, make one payment and one intent; a payment recorded failed
that Stripe later reports succeeded beside the one that paid is recorded as an overpayment, the
invoice unchanged. A card that needs 3-D Secure answers REQUIRES_ACTION with its client secret and
the invoice is paid once the intent succeeds. Paying one of two suspending invoices keeps the
organization suspended; paying the other restores it. paymentMethodId is a pm_ id or INVALID_INPUT.
A Net-N invoice past its due date raises PAYMENT_FAILED once, resolved when it is paid. The invoice
cron reads only the charge facts not yet invoiced."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from jobs.invoices import issue_invoices, run_dunning
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind
from ledger.invoicing import dunning_store, store
from ledger.invoicing.dunning import suspend_due
from ledger.invoicing.issue import periods_due
from ledger.payments.customers import ensure_customer
from ledger.payments.settle import settle_intent
from ledger.payments.store import Payment, PaymentStatus, Purpose, insert_payment, record_outcome
from tests.conftest import Service
from tests.invoicing_setup import AFTER_END, INVOICE, Jobs, current_period_end, default_card, jobs_of, subscribed
from tests.ledger_api import Ledger
from tests.payments_support import stripe_intents
from tests.stripe_fake import CARD_3DS, CARD_OK, FakeStripe

PAY = f"""mutation($input: PayInvoiceInput!) {{ payInvoice(input: $input) {{
  invoice {{ {INVOICE} }} payment {{ id status clientSecret nextActionType paymentIntentId }} }} }}"""


async def _open_invoice(
    service: Service,
    org: Ledger,
    pool: asyncpg.Pool,
    *,
    days_ago: int = 40,
    amount: int = 20_000,
    collection: Collection = Collection.CHARGE_AUTOMATICALLY,
) -> Invoice:
    """An open invoice (by card unless told) of the organization's subscription for 30 days from
    `days_ago` days ago, issued and due at their end."""
    subscription_id = await pool.fetchval("SELECT id FROM subscriptions WHERE org_id = $1", UUID(org.org))
    start = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0)
    line = InvoiceLine(LineKind.PLAN, "Build", Decimal(1), Decimal(amount) / 100, amount, source=f"fee:{start}")
    invoice = Invoice(
        id=uuid.uuid4(), organization_id=UUID(org.org), subscription_id=subscription_id,
        number=f"INV-T-{uuid.uuid4().hex[:8]}", period_start=start, period_end=start + timedelta(days=30),
        currency="USD", collection=collection, status=InvoiceStatus.OPEN,
        issued_at=start + timedelta(days=30), due_at=start + timedelta(days=30), lines=(line,),
    )  # fmt: skip
    async with pool.acquire() as connection, connection.transaction():
        assert await store.insert_invoice(connection, invoice)
    return invoice


async def _pay(service: Service, org: Ledger, invoice: Invoice, key: str, **more: Any) -> dict[str, Any]:
    body = await service.graphql(
        PAY, input={"organizationId": org.org, "invoiceId": str(invoice.id), "idempotencyKey": key, **more}
    )
    return body


async def _payments(pool: asyncpg.Pool, invoice: Invoice) -> list[tuple[str, int]]:
    rows = await pool.fetch("SELECT status, amount FROM payments WHERE invoice_id = $1", invoice.id)
    return sorted((row["status"], row["amount"]) for row in rows)


async def _intents_of(stripe: FakeStripe, jobs: Jobs, org: Ledger) -> list[dict[str, Any]]:
    customer = await ensure_customer(jobs.payments(), UUID(org.org))
    return [intent for intent in await stripe_intents(stripe) if intent["customer"] == customer]


async def test_five_pay_invoice_calls_with_five_keys_charge_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        invoice = await _open_invoice(paying_service, org, pool)
        answers = await asyncio.gather(*(_pay(paying_service, org, invoice, f"k{n}") for n in range(5)))
        intents = await _intents_of(stripe, jobs, org)
    assert all("errors" not in answer for answer in answers), answers
    shown = [answer["data"]["payInvoice"] for answer in answers]
    assert {(s["invoice"]["status"], s["payment"]["status"], s["payment"]["id"]) for s in shown} == {
        ("PAID", "SUCCEEDED", shown[0]["payment"]["id"])
    }
    assert await _payments(pool, invoice) == [("succeeded", 20_000)]
    assert [(intent["amount"], intent["status"]) for intent in intents] == [(20_000, "succeeded")]


async def test_pay_invoice_racing_the_dunning_retry_charges_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        invoice = await _open_invoice(paying_service, org, pool)
        first = datetime.now(UTC) - timedelta(days=1, minutes=5)
        await dunning_store.record_failure(pool, invoice.id, invoice.organization_id, 1, first)  # retry due now
        ctx = jobs.ctx()
        _, answer = await asyncio.gather(run_dunning(ctx), _pay(paying_service, org, invoice, "by-hand"))
        await run_dunning(ctx)
        intents = await _intents_of(stripe, jobs, org)
    assert "errors" not in answer, answer
    assert answer["data"]["payInvoice"]["invoice"]["status"] == "PAID"
    assert await _payments(pool, invoice) == [("succeeded", 20_000)]
    assert [intent["status"] for intent in intents] == ["succeeded"]
    assert (await dunning_store.dunning_of(pool, invoice.id)).resolved_at is not None  # type: ignore[union-attr]


async def test_a_late_success_beside_the_paying_payment_is_recorded_as_an_overpayment(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        card = stripe.card(CARD_OK)
        await default_card(jobs, org.org, card)
        invoice = await _open_invoice(paying_service, org, pool)
        ctx = jobs.payments()
        # An old attempt, recorded failed (its answer lost), whose intent Stripe made after all.
        old = Payment(
            id=uuid.uuid4(), organization_id=invoice.organization_id, purpose=Purpose.INVOICE,
            status=PaymentStatus.CREATING, amount=20_000, currency="USD", payment_intent_id=None, decline_code=None,
            failure_message=None, credits=None, lot_id=None, grant_transaction_id=None, invoice_id=invoice.id,
            pack_key=None, created_at=ctx.now, succeeded_at=None, refunded_amount=0,
            request_key=f"invoice:{invoice.id}:1", payment_method_id=card,
        )  # fmt: skip
        assert await insert_payment(pool, old) is not None
        await record_outcome(pool, old.id, None, PaymentStatus.FAILED, None, "given up", ctx.now)
        paid = await _pay(paying_service, org, invoice, "now")
        assert paid["data"]["payInvoice"]["invoice"]["status"] == "PAID", paid
        customer = await ensure_customer(ctx, invoice.organization_id)
        late = await ctx.gateway.create_payment_intent(
            customer=customer, payment_method=card, amount=20_000, currency="USD", off_session=True,
            idempotency_key=f"payment:{old.id}", metadata={"payment_id": str(old.id), "org": org.org},
        )  # fmt: skip
        settled = await settle_intent(ctx, late, "webhook")
    assert settled is not None and settled.status is PaymentStatus.SUCCEEDED
    assert await _payments(pool, invoice) == [("succeeded", 20_000), ("succeeded", 20_000)]
    stored = await store.stored_invoice(pool, invoice.id)
    assert stored is not None and stored.payment_id == UUID(paid["data"]["payInvoice"]["payment"]["id"])
    rows = await pool.fetch("SELECT payment_id, amount, currency FROM invoice_overpayments WHERE invoice_id = $1",
                            invoice.id)  # fmt: skip
    assert [tuple(row) for row in rows] == [(old.id, 20_000, "USD")]


async def test_a_card_needing_3ds_answers_requires_action_then_the_intent_pays_the_invoice(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_3DS))
        invoice = await _open_invoice(paying_service, org, pool)
        waiting = await _pay(paying_service, org, invoice, "3ds")
        assert "errors" not in waiting, waiting
        shown = waiting["data"]["payInvoice"]
        assert (shown["invoice"]["status"], shown["payment"]["status"]) == ("OPEN", "REQUIRES_ACTION")
        assert shown["payment"]["clientSecret"] and shown["payment"]["nextActionType"] == "use_stripe_sdk"
        again = (await _pay(paying_service, org, invoice, "another-key"))["data"]["payInvoice"]
        assert (again["payment"]["id"], again["payment"]["status"]) == (shown["payment"]["id"], "REQUIRES_ACTION")
        # The customer authenticates in the browser; the poll (or webhook) then reads the intent.
        intent_id = shown["payment"]["paymentIntentId"]
        async with httpx.AsyncClient(base_url=stripe.url, auth=("sk_test_fixture", ""), timeout=10) as client:
            done = await client.post(
                f"/v1/payment_intents/{intent_id}/_authenticate",
                data={"client_secret": shown["payment"]["clientSecret"], "success": "true"},
            )
        done.raise_for_status()
        ctx = jobs.payments()
        await settle_intent(ctx, await ctx.gateway.retrieve_payment_intent(intent_id), "poll")
    after = await store.load_invoice(pool, invoice.id)
    assert after is not None and after.status is InvoiceStatus.PAID
    assert await _payments(pool, invoice) == [("succeeded", 20_000)]


async def test_paying_one_of_two_suspending_invoices_keeps_the_suspension(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build", days_ago=80)
        await org.accepted("grantCredits", amount="10")
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        older = await _open_invoice(paying_service, org, pool, days_ago=70)
        newer = await _open_invoice(paying_service, org, pool, days_ago=40)
        failed = datetime.now(UTC) - timedelta(days=8)
        for invoice in (older, newer):
            await dunning_store.record_failure(pool, invoice.id, invoice.organization_id, 4, failed)
        assert await suspend_due(jobs.payments()) == 2
        await org.rejected("recordUsage", "SUSPENDED", product="sms.message", quantity="1")
        assert "errors" not in await _pay(paying_service, org, older, "older")
        await org.rejected("recordUsage", "SUSPENDED", product="sms.message", quantity="1")
        assert "errors" not in await _pay(paying_service, org, newer, "newer")
        await org.accepted("recordUsage", product="sms.message", quantity="1")


async def test_pay_invoice_takes_only_a_stripe_payment_method_id(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        invoice = await _open_invoice(paying_service, org, pool)
        for wrong in ("card_x?&a=b", "pm_", "pm_a b", "x" * 300):
            body = await _pay(paying_service, org, invoice, "bad", paymentMethodId=wrong)
            assert [error["extensions"]["code"] for error in body["errors"]] == ["INVALID_INPUT"], wrong
    assert await _payments(pool, invoice) == []


async def test_an_overdue_net_invoice_raises_payment_failed_once(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    async with jobs_of(paying_service) as jobs:
        org = await subscribed(paying_service, "meclabs-build")
        await default_card(jobs, org.org, stripe.card(CARD_OK))
        invoice = await _open_invoice(paying_service, org, pool, collection=Collection.SEND_INVOICE)
        ctx = jobs.ctx()
        assert sorted(await asyncio.gather(run_dunning(ctx), run_dunning(ctx))) == [0, 1]
        assert await run_dunning(ctx) == 0
        events = "SELECT kind, state FROM alert_events WHERE org_id = $1 ORDER BY committed_at, id"
        assert [tuple(row) for row in await pool.fetch(events, UUID(org.org))] == [("payment_failed", "triggered")]
        keyed = "SELECT count(*) FROM ledger_transactions WHERE org_id = $1 AND idempotency_key = $2"
        assert await pool.fetchval(keyed, UUID(org.org), f"invoice:{invoice.id}:overdue") == 1
        assert "errors" not in await _pay(paying_service, org, invoice, "late")
    assert [tuple(row) for row in await pool.fetch(events, UUID(org.org))] == [
        ("payment_failed", "triggered"),
        ("payment_failed", "resolved"),
    ]


async def test_the_invoice_cron_reads_only_periods_not_yet_invoiced(service: Service, pool: asyncpg.Pool) -> None:
    async with jobs_of(service) as jobs:
        org = await subscribed(service, "meclabs-enterprise", days_ago=360, interval="ANNUAL")
        jobs.now = await current_period_end(service, org) + AFTER_END
        await jobs.turnover()
        facts = "SELECT invoiced FROM period_facts WHERE org_id = $1 AND reason = 'charge' ORDER BY period_start"
        assert [row["invoiced"] for row in await pool.fetch(facts, UUID(org.org))] == [False, False]
        assert len(await periods_due(pool, jobs.now, 100)) == 1  # the ended year; the new one runs
        assert await issue_invoices(jobs.ctx()) == 1
        assert [row["invoiced"] for row in await pool.fetch(facts, UUID(org.org))] == [True, False]
        assert await periods_due(pool, jobs.now, 100) == []
        # A fact whose mark was lost is read again and finds its invoice: nothing more is issued.
        await pool.execute("UPDATE period_facts SET invoiced = false WHERE org_id = $1", UUID(org.org))
        assert await issue_invoices(jobs.ctx()) == 0
        assert [row["invoiced"] for row in await pool.fetch(facts, UUID(org.org))] == [True, False]
    assert await pool.fetchval("SELECT count(*) FROM invoices WHERE org_id = $1", UUID(org.org)) == 1
