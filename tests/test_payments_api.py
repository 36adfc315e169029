"""The payments API's refusals and cards through the real service and localstripe: a declined card
(on charge and on attach), a card needing authentication, payment methods listed, made default and
detached, who may do it, and a service without Stripe."""

from __future__ import annotations

import asyncpg

from tests.conftest import Service
from tests.payments_support import new_organization, pay, purchased_lots
from tests.principals import cast
from tests.stripe_fake import CARD_3DS, CARD_CHARGES_FAIL, CARD_DECLINED_ON_ATTACH, CARD_OK, FakeStripe

BOUGHT = "payment { id status declineCode clientSecret nextActionType creditsGranted } creditsGranted"
METHODS = "query($org: ID!) { paymentMethods(organizationId: $org) { id last4 isDefault } }"


async def test_a_declined_card_is_payment_declined_with_its_code_and_grants_nothing(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org = await new_organization(pool)
    card = stripe.card(CARD_CHARGES_FAIL)
    assert (await pay(paying_service, "attachPaymentMethod", "isDefault", organizationId=str(org),
                      paymentMethodId=card)) == {"isDefault": True}  # fmt: skip
    declined = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                         idempotencyKey="d1")  # fmt: skip
    assert declined["codes"] == ["PAYMENT_DECLINED"]
    assert declined["errors"][0]["extensions"]["declineCode"] == "card_declined"
    assert await purchased_lots(pool, org) == []
    listed = await paying_service.graphql(
        "query($org: ID!) { payments(organizationId: $org) { status declineCode creditsGranted } }", org=str(org)
    )
    assert listed["data"]["payments"] == [{"status": "FAILED", "declineCode": "card_declined", "creditsGranted": "0"}]


async def test_a_card_declined_on_attach_is_refused_clearly(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org = await new_organization(pool)
    refused = await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(org),
                        paymentMethodId=stripe.card(CARD_DECLINED_ON_ATTACH))  # fmt: skip
    assert refused["codes"] == ["PAYMENT_DECLINED"]
    assert refused["errors"][0]["extensions"]["declineCode"] == "card_declined"
    assert (await paying_service.graphql(METHODS, org=str(org)))["data"]["paymentMethods"] == []


async def test_a_card_needing_authentication_answers_what_the_client_needs_and_grants_nothing(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org = await new_organization(pool)
    await pay(
        paying_service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId=stripe.card(CARD_3DS)
    )
    answer = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                       idempotencyKey="3ds")  # fmt: skip
    payment = answer["payment"]
    assert (payment["status"], payment["nextActionType"], answer["creditsGranted"]) == (
        "REQUIRES_ACTION", "use_stripe_sdk", "0")  # fmt: skip
    assert payment["clientSecret"].startswith("pi_") and "_secret_" in payment["clientSecret"]
    assert await purchased_lots(pool, org) == []


async def test_payment_methods_listed_made_default_and_detached(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    org, other = await new_organization(pool), await new_organization(pool)
    first, second = stripe.card(CARD_OK), stripe.card(CARD_OK)
    foreign = stripe.card(CARD_OK)
    await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId=first)
    await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId=second)
    await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(other), paymentMethodId=foreign)
    listed = (await paying_service.graphql(METHODS, org=str(org)))["data"]["paymentMethods"]
    assert listed == [
        {"id": first, "last4": "4242", "isDefault": True},
        {"id": second, "last4": "4242", "isDefault": False},
    ]
    made = await pay(paying_service, "setDefaultPaymentMethod", "id isDefault", organizationId=str(org),
                     paymentMethodId=second)  # fmt: skip
    assert made == {"id": second, "isDefault": True}
    assert (await pay(paying_service, "detachPaymentMethod", "id", organizationId=str(org),
                      paymentMethodId=second)) == {"id": second}  # fmt: skip
    assert [m["id"] for m in (await paying_service.graphql(METHODS, org=str(org)))["data"]["paymentMethods"]] == [first]
    for mutation in ("setDefaultPaymentMethod", "detachPaymentMethod"):
        refused = await pay(paying_service, mutation, "id", organizationId=str(org), paymentMethodId=foreign)
        assert refused["codes"] == ["NOT_FOUND"], mutation
    # With no default card left, a pack without a card named has nothing to charge.
    await pay(paying_service, "detachPaymentMethod", "id", organizationId=str(org), paymentMethodId=first)
    none = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                     idempotencyKey="n")  # fmt: skip
    assert none["codes"] == ["PAYMENT_METHOD_REQUIRED"]
    bad = await pay(paying_service, "attachPaymentMethod", "id", organizationId=str(org), paymentMethodId="4242 4242")
    assert bad["codes"] == ["INVALID_INPUT"]
    long_key = await pay(paying_service, "buyCreditPack", BOUGHT, organizationId=str(org), pack="cheddar-20",
                         idempotencyKey="k" * 201)  # fmt: skip
    assert long_key["codes"] == ["INVALID_INPUT"]


async def test_a_viewer_may_read_payments_but_not_buy_or_attach(
    paying_service: Service, pool: asyncpg.Pool, stripe: FakeStripe
) -> None:
    people = await cast(pool, paying_service.admin_key)
    org = str(people.org_a)
    viewer, billing = people.credentials["viewer_key"], people.credentials["billing_user"]
    card = stripe.card(CARD_OK)
    refused = await pay(paying_service, "attachPaymentMethod", "id", credentials=viewer, organizationId=org,
                        paymentMethodId=card)  # fmt: skip
    assert refused["codes"] == ["FORBIDDEN"]
    assert (await pay(paying_service, "attachPaymentMethod", "id", credentials=billing, organizationId=org,
                      paymentMethodId=card)) == {"id": card}  # fmt: skip
    bought = await pay(paying_service, "buyCreditPack", "creditsGranted", credentials=viewer, organizationId=org,
                       pack="cheddar-20", idempotencyKey="v")  # fmt: skip
    assert bought["codes"] == ["FORBIDDEN"]
    read = await paying_service.graphql(METHODS, credentials=viewer, org=org)
    assert read["data"]["paymentMethods"] == [{"id": card, "last4": "4242", "isDefault": True}]
    assert await purchased_lots(pool, people.org_a) == []


async def test_without_a_stripe_key_payments_are_not_configured(service: Service, pool: asyncpg.Pool) -> None:
    org = await new_organization(pool)
    for mutation, extra in (("attachPaymentMethod", {"paymentMethodId": "pm_123"}),
                            ("buyCreditPack", {"pack": "cheddar-20", "idempotencyKey": "x"})):  # fmt: skip
        answer = await pay(service, mutation, "__typename", organizationId=str(org), **extra)
        assert answer["codes"] == ["PAYMENTS_NOT_CONFIGURED"], mutation
    assert (await service.graphql(METHODS, org=str(org)))["errors"][0]["extensions"][
        "code"
    ] == "PAYMENTS_NOT_CONFIGURED"
    listed = await service.graphql("query($org: ID!) { payments(organizationId: $org) { id } }", org=str(org))
    assert listed["data"]["payments"] == []
