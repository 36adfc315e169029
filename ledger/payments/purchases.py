"""Buying a credit pack by hand: the pack in force now, offered to the organization's plan, at its
price plus surcharge; credits only once the payment succeeded (`settle_intent`)."""

from __future__ import annotations

from uuid import UUID

from ledger.core.errors import PaymentDeclined
from ledger.payments.charges import charge
from ledger.payments.context import PaymentContext
from ledger.payments.packs import pack_charge, pack_for_sale
from ledger.payments.store import Payment, PaymentStatus
from ledger.store.catalog_versions import load_catalog
from ledger.subscriptions.store import live_subscription_of


def request_key(client_key: str) -> str:
    """A pack's payment key: the client's own, apart from the keys recharges and invoices use."""
    return f"pack:{client_key}"


async def buy_pack(
    ctx: PaymentContext, organization_id: UUID, pack_key: str, payment_method_id: str | None, client_key: str
) -> Payment:
    """Charge for the pack (once per client key). A declined card is PAYMENT_DECLINED with
    Stripe's code; a card needing authentication answers REQUIRES_ACTION with its client secret."""
    catalog = await load_catalog(ctx.pool)
    subscription = await live_subscription_of(ctx.pool, organization_id)
    plan_key = subscription.plan_key if subscription is not None else None
    pack = pack_for_sale(catalog, pack_key, plan_key, ctx.now)
    request = pack_charge(
        pack, organization_id=organization_id, request_key=request_key(client_key),
        payment_method_id=payment_method_id, off_session=False,
    )  # fmt: skip
    payment = await charge(ctx, request)
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        raise PaymentDeclined(
            payment.failure_message or "The card was declined; nothing was charged or granted.",
            payment.decline_code or "card_declined",
        )
    return payment
