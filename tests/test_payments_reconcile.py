"""The reconciliation on its own: a payment whose charge died before Stripe answered is charged
again under the same key (once), or marked failed once no retry is safe; the poll's cursor moves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from jobs.payments import reconcile_stripe
from ledger.payments.store import Payment, PaymentStatus, Purpose, insert_payment, payment_by_id
from tests.conftest import Service
from tests.payments_support import jobs_context, new_organization, pay, purchased_lots, stripe_intents
from tests.stripe_fake import CARD_OK, FakeStripe

CREDIT = 1_000_000


def _crashed(org: uuid.UUID, card: str, created_at: datetime, key: str) -> Payment:
    """A payments row `charge` wrote before it died, before Stripe was asked for an intent."""
    return Payment(
        id=uuid.uuid4(), organization_id=org, purpose=Purpose.PACK, status=PaymentStatus.CREATING, amount=6000,
        currency="USD", payment_intent_id=None, decline_code=None, failure_message=None, credits=20 * CREDIT,
        lot_id=None, grant_transaction_id=None, invoice_id=None, pack_key="cheddar-20", created_at=created_at,
        succeeded_at=None, refunded_amount=0, request_key=key, payment_method_id=card,
    )  # fmt: skip


async def test_a_charge_that_died_before_stripe_answered_is_made_once_or_given_up(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org = await new_organization(pool)
    card = stripe.card(CARD_OK)
    await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId=card)
    now = datetime.now(UTC)
    recent = await insert_payment(pool, _crashed(org, card, now - timedelta(minutes=5), "pack:recent"))
    old = await insert_payment(pool, _crashed(org, card, now - timedelta(hours=30), "pack:old"))
    fresh = await insert_payment(pool, _crashed(org, card, now, "pack:fresh"))  # may still be on its way
    assert recent is not None and old is not None and fresh is not None
    async with jobs_context(paying_service, clock=lambda: now) as ctx:
        await reconcile_stripe(ctx)
        await reconcile_stripe(ctx)
    retried, given_up, waiting = [await payment_by_id(pool, p.id) for p in (recent, old, fresh)]
    assert retried is not None and retried.status is PaymentStatus.SUCCEEDED and retried.lot_id is not None
    assert given_up is not None and (given_up.status, given_up.decline_code) == (PaymentStatus.FAILED, "not_created")
    assert waiting is not None and waiting.status is PaymentStatus.CREATING
    assert [i["metadata"]["payment_id"] for i in await stripe_intents(stripe)] == [str(recent.id)]
    assert [lot["amount"] for lot in await purchased_lots(pool, org)] == [20 * CREDIT]
    cursor = await pool.fetchval("SELECT created FROM stripe_cursors WHERE name = 'events'")
    assert cursor is not None and cursor >= int(now.timestamp()) - 60
    # The retried intent's success came in once, by the webhook or the poll, whichever was first.
    succeeded = await pool.fetchval(
        "SELECT count(*) FROM stripe_events WHERE type = 'payment_intent.succeeded'"
        " AND payload -> 'data' -> 'object' ->> 'id' = $1",
        retried.payment_intent_id,
    )
    assert succeeded == 1
