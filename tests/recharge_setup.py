"""What the auto-recharge and refund tests share: an organization with a saved card in
localstripe, the jobs' payments (from `tests.payments_support.jobs_context`), and reads of what
localstripe and our tables hold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from jobs.context import payment_context as job_payments
from ledger.payments.context import PaymentContext
from ledger.payments.customers import ensure_customer
from ledger.payments.gateway import Gateway
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.stripe_fake import FakeStripe

AUTO_RECHARGE = """
enabled threshold pack monthlyCap { value } currency chargedThisMonth { value } updatedAt
recharges { alertEventId status money { value } month paymentId detail createdAt }
"""
MINUTE = "transcription.minutes"  # 2 credits a minute
REFUND = """
id paymentId status money { value formatted } currency credits reason ledgerTransactionId stripeRefundId createdAt
"""


def payment_context(ctx: dict[str, Any], now: datetime | None = None) -> PaymentContext:
    """The jobs' payments (`jobs.context.payment_context`) from a `jobs_context` with a Stripe key."""
    payments = job_payments(ctx, now)
    assert payments is not None
    return payments


async def with_card(ctx: dict[str, Any], stripe: FakeStripe, org: str, number: str) -> str:
    """Save a test card as the organization's default (as Stripe.js and the payment-method API would)."""
    gateway: Gateway = ctx["gateway"]
    customer = await ensure_customer(payment_context(ctx), UUID(org))
    method = await gateway.attach_payment_method(customer, stripe.card(number))
    await gateway.set_default_payment_method(customer, method.id)
    return customer


async def funded(service: Service, credits: str, kind: str = "BASE") -> Ledger:
    org = await Ledger.create(service, "Cheddar customer")
    await org.accepted("grantCredits", amount=credits, kind=kind)
    return org


async def use(org: Ledger, clients: int) -> None:
    """`clients` concurrent requests of one minute each (2 credits)."""
    outcomes = await asyncio.gather(*(org.send("recordUsage", product=MINUTE, quantity="1") for _ in range(clients)))
    assert all(outcome["status"] == "ACCEPTED" for outcome in outcomes), outcomes


async def set_auto_recharge(service: Service, org: str, **fields: Any) -> dict[str, Any]:
    """Run setAutoRecharge; its answer, or its errors' codes under "codes"."""
    body = await service.graphql(
        f"mutation($input: SetAutoRechargeInput!) {{ setAutoRecharge(input: $input) {{ {AUTO_RECHARGE} }} }}",
        input={"organizationId": org, **fields},
    )
    if body.get("errors"):
        return {"codes": [error["extensions"]["code"] for error in body["errors"]]}
    answer: dict[str, Any] = body["data"]["setAutoRecharge"]
    return answer


def intents_of(stripe: FakeStripe, customer: str) -> list[dict[str, Any]]:
    """Every PaymentIntent localstripe holds for the customer."""
    response = httpx.get(f"{stripe.url}/v1/payment_intents", params={"limit": 100}, auth=("sk_test_x", ""), timeout=10)
    response.raise_for_status()
    return [intent for intent in response.json()["data"] if intent["customer"] == customer]


def refunds_in_stripe(stripe: FakeStripe, payment_intent: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stripe.url}/v1/refunds", params={"payment_intent": payment_intent},
                         auth=("sk_test_x", ""), timeout=10)  # fmt: skip
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def refund_in_stripe(stripe: FakeStripe, payment_intent: str) -> None:
    """Refund the intent in full at Stripe directly (as in its dashboard), outside this service."""
    response = httpx.post(f"{stripe.url}/v1/refunds", data={"payment_intent": payment_intent},
                          auth=("sk_test_x", ""), timeout=10)  # fmt: skip
    response.raise_for_status()


async def recharges(pool: asyncpg.Pool, org: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM recharges WHERE org_id = $1 ORDER BY created_at", UUID(org))


async def purchased_lots(org: Ledger) -> list[dict[str, Any]]:
    return [lot for lot in (await org.lots()).values() if lot["kind"] == "PURCHASED"]


async def alert_events(pool: asyncpg.Pool, org: str, kind: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM alert_events WHERE org_id = $1 AND kind = $2 ORDER BY committed_at, id", UUID(org), kind
    )


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> float:
    """Wait until `check()` holds; how long it took (fails the test past `within_s`)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def buy(service: Service, org: Ledger, pack: str = "cheddar-50", key: str = "buy-1") -> dict[str, Any]:
    body = await service.graphql(
        """mutation($input: BuyCreditPackInput!) { buyCreditPack(input: $input) {
             payment { id status paymentIntentId } creditsGranted } }""",
        input={"organizationId": org.org, "pack": pack, "idempotencyKey": key},
    )
    assert "errors" not in body, body
    payment: dict[str, Any] = body["data"]["buyCreditPack"]["payment"]
    assert payment["status"] == "SUCCEEDED", payment
    return payment


async def refund_call(service: Service, org: Ledger, **fields: Any) -> dict[str, Any]:
    """Run `refund`; its answer, or its errors' codes under "codes"."""
    body = await service.graphql(
        f"mutation($input: RefundInput!) {{ refund(input: $input) {{ {REFUND} }} }}",
        input={"organizationId": org.org, "idempotencyKey": "refund-1", **fields},
    )
    if body.get("errors"):
        return {"codes": [error["extensions"]["code"] for error in body["errors"]]}
    answer: dict[str, Any] = body["data"]["refund"]
    return answer
