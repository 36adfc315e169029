"""`POST /stripe/webhook` against the real service: an event signed as Stripe signs it is stored
once and applied; a replay changes nothing; a forged or stale one is refused and stores nothing; a
dispute raises a billing alert; without a webhook secret every event is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx

from ledger.runtime.settings import Settings
from tests.conftest import WEBHOOK_SECRET, Service, serving
from tests.payments_support import new_organization, pay, purchased_lots, stripe_intents, until
from tests.stripe_fake import CARD_OK, FakeStripe

CREDIT = 1_000_000


def signed(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    """The Stripe-Signature header Stripe sends: t=<unix time>,v1=<HMAC-SHA256 of "t.body">."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={timestamp},v1={digest}", "content-type": "application/json"}


def event(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    body = {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": kind,
            "created": int(time.time()), "data": {"object": data}, "livemode": False}  # fmt: skip
    return json.dumps(body).encode()


async def _post(service: Service, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await service.client.post("/stripe/webhook", content=body, headers=headers)


async def _stored(pool: asyncpg.Pool, ids: list[str] | None = None) -> list[tuple[str, str, bool]]:
    """The inbox (the events of `ids` only, if given: localstripe may still send a late event of the
    test before to this test's endpoint, as Stripe may send any event of the account)."""
    rows = await pool.fetch(
        "SELECT id, type, applied_at IS NOT NULL AS applied FROM stripe_events"
        " WHERE $1::text[] IS NULL OR id = ANY($1) ORDER BY id",
        ids,
    )
    return [(row["id"], row["type"], row["applied"]) for row in rows]


async def _paid_intent(service: Service, pool: asyncpg.Pool, stripe: FakeStripe) -> tuple[uuid.UUID, dict[str, Any]]:
    """A pack paid with a good card, localstripe's own webhooks sent nowhere: the intent as Stripe has it."""
    stripe.register_webhook("http://127.0.0.1:9/nowhere", "whsec_unused")
    org = await new_organization(pool)
    await pay(service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId=stripe.card(CARD_OK))
    bought = await pay(service, "buyCreditPack", "payment { id status }", organizationId=str(org), pack="cheddar-20",
                       idempotencyKey="w1")  # fmt: skip
    assert bought["payment"]["status"] == "SUCCEEDED", bought
    [intent] = await stripe_intents(stripe)
    return org, intent


async def test_a_signed_event_is_stored_once_and_a_replay_changes_nothing(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, intent = await _paid_intent(paying_service, pool, stripe)
    body = event("payment_intent.succeeded", intent, "evt_replayed")
    first = await _post(paying_service, body, signed(body))
    assert first.status_code == 200, first.text
    await until(lambda: _all_applied(pool))
    replayed = await _post(paying_service, body, signed(body))
    assert (replayed.status_code, replayed.json()) == (200, {"received": True, "duplicate": True})
    assert await _stored(pool, ["evt_replayed"]) == [("evt_replayed", "payment_intent.succeeded", True)]
    assert [lot["amount"] for lot in await purchased_lots(pool, org)] == [20 * CREDIT]
    # A late "failed" for the same intent never undoes a success (the intent is read again anyway).
    late = event("payment_intent.payment_failed", {**intent, "status": "requires_payment_method"}, "evt_late")
    assert (await _post(paying_service, late, signed(late))).status_code == 200
    await until(lambda: _all_applied(pool))
    status = await pool.fetchval("SELECT status FROM payments WHERE payment_intent_id = $1", intent["id"])
    assert status == "succeeded" and len(await purchased_lots(pool, org)) == 1


async def _all_applied(pool: asyncpg.Pool) -> bool:
    return all(applied for _, _, applied in await _stored(pool))


async def test_forged_stale_and_unsigned_events_are_refused_and_store_nothing(
    paying_service: Service, pool: asyncpg.Pool
) -> None:
    body = event("payment_intent.succeeded", {"id": "pi_forged", "object": "payment_intent", "amount": 100}, "evt_f")
    forged = await _post(paying_service, body, signed(body, secret="whsec_" + "x" * 32))
    stale = await _post(paying_service, body, signed(body, at=int(time.time()) - 301))
    unsigned = await _post(paying_service, body, {"content-type": "application/json"})
    tampered = await _post(paying_service, body.replace(b"100", b"900"), signed(body))
    for answer in (forged, stale, unsigned, tampered):
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert await _stored(pool, ["evt_f"]) == []


async def test_an_unknown_event_is_stored_and_applied_as_nothing(paying_service: Service, pool: asyncpg.Pool) -> None:
    body = event("customer.subscription.trial_will_end", {"id": "sub_x", "object": "subscription"}, "evt_unknown")
    assert (await _post(paying_service, body, signed(body))).status_code == 200
    await until(lambda: _all_applied(pool))
    assert await _stored(pool, ["evt_unknown"]) == [("evt_unknown", "customer.subscription.trial_will_end", True)]


async def test_a_dispute_raises_a_payment_failed_alert_once(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, intent = await _paid_intent(paying_service, pool, stripe)
    dispute = {"id": "dp_1", "object": "dispute", "amount": 6000, "currency": "usd", "reason": "fraudulent",
               "payment_intent": intent["id"], "charge": "ch_1"}  # fmt: skip
    for event_id in ("evt_dispute", "evt_dispute_again"):  # two deliveries of one dispute: one alert
        body = event("charge.dispute.created", dispute, event_id)
        assert (await _post(paying_service, body, signed(body))).status_code == 200
        await until(lambda: _all_applied(pool))
    alerts = await pool.fetch("SELECT kind, state, name, value FROM alert_events WHERE org_id = $1", org)
    assert [(a["kind"], a["state"], a["value"]) for a in alerts] == [("payment_failed", "triggered", 6000)]
    assert "dispute opened" in alerts[0]["name"] and "fraudulent" in alerts[0]["name"]


async def test_without_a_webhook_secret_every_event_is_refused(
    settings: Settings, pool: asyncpg.Pool, stripe: FakeStripe, catalog: object
) -> None:
    async with serving(stripe.settings(settings, webhook_secret=""), pool) as service:
        body = event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
        answer = await _post(service, body, signed(body))
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["extensions"]["code"] == "PAYMENTS_NOT_CONFIGURED"
    assert await _stored(pool) == []
