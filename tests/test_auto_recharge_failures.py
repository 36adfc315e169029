"""Auto-recharge when it cannot or must not charge: a card that always fails (one failed recharge,
one alert, no retry storm, re-armed by a payment), a card that needs the cardholder, no card at
all; the settings' checks (nothing changes on bad input), disabling, and no Stripe key."""

from __future__ import annotations

import asyncpg

from jobs.recharge import start_recharge_listener, stop_recharge_listener, sweep_recharges
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.payments_support import jobs_context
from tests.recharge_setup import (
    alert_events,
    eventually,
    funded,
    intents_of,
    purchased_lots,
    recharges,
    set_auto_recharge,
    use,
    with_card,
)
from tests.stripe_fake import CARD_3DS, CARD_CHARGES_FAIL, CARD_OK, FakeStripe

SETTINGS = {"enabled": True, "threshold": "50", "pack": "cheddar-50", "monthlyCap": "1500"}


async def test_a_card_that_always_fails_makes_one_failed_recharge_and_one_alert_until_a_payment_rearms_it(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_CHARGES_FAIL)
        await set_auto_recharge(paying_service, org.org, **SETTINGS)
        await start_recharge_listener(ctx)
        try:
            await use(org, 6)  # 60 -> 48: the crossing
            await eventually(lambda: _statuses(pool, org, ["failed"]))
            # More usage below the threshold: the rule stays triggered, nothing is charged again.
            await use(org, 10)
            for _ in range(3):
                assert await sweep_recharges(ctx) == 0
        finally:
            await stop_recharge_listener(ctx)
        assert len(intents_of(stripe, customer)) <= 1  # a 402 may or may not leave the intent behind
        [failed] = await alert_events(pool, org.org, "auto_recharge_failed")
        assert failed["name"].startswith("auto-recharge failed: 150.00 USD declined")
        assert failed["value"] == 15_000
        [row] = await recharges(pool, org.org)
        assert row["detail"].endswith("declined (card_declined)") and row["payment_id"] is not None
        assert await purchased_lots(org) == []
        # A payment lifts the balance (a pack bought by hand; a grant here): the rule re-arms, and with a
        # card that works the next crossing recharges.
        await org.accepted("grantCredits", amount="100")  # 28 -> 128
        await with_card(ctx, stripe, org.org, CARD_OK)
        await use(org, 40)  # 128 -> 48
        assert await sweep_recharges(ctx) == 1
    assert await _statuses(pool, org, ["failed", "succeeded"])
    assert len(await purchased_lots(org)) == 1
    states = [event["state"] for event in await alert_events(pool, org.org, "auto_recharge")]
    assert states == ["triggered", "resolved", "triggered", "resolved"]


async def test_a_card_needing_authentication_or_no_card_fails_the_recharge_off_session(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    needs_3ds, no_card = await funded(paying_service, "60"), await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        await with_card(ctx, stripe, needs_3ds.org, CARD_3DS)
        for org in (needs_3ds, no_card):
            await set_auto_recharge(paying_service, org.org, **SETTINGS)
            await use(org, 6)
        assert await sweep_recharges(ctx) == 2
        assert await sweep_recharges(ctx) == 0
    for org, why in ((needs_3ds, "authentication"), (no_card, "no default")):
        [row] = await recharges(pool, org.org)
        assert row["status"] == "failed" and why in row["detail"], row
        assert len(await alert_events(pool, org.org, "auto_recharge_failed")) == 1
        assert await purchased_lots(org) == []


async def test_settings_are_checked_before_anything_changes_and_disabling_removes_the_rule(
    paying_service: Service, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(paying_service, "Cheddar settings")
    bad = {
        "NOT_FOUND": [{"pack": "no-such-pack"}],
        "INVALID_INPUT": [
            {"pack": "cheddar-signup"},  # the sign-up gift is not sold
            {"pack": "seatsco-topup"},  # offered to SeatsCo's plan only
            {"monthlyCap": "0"},
            {"monthlyCap": "-5"},
            {"monthlyCap": "149.99"},  # below one pack
            {"monthlyCap": "300.001"},  # USD has cents
            {"monthlyCap": "1000000.01"},  # past the bound
            {"monthlyCap": "lots"},
            {"threshold": "-1"},
            {"organizationId": "not-an-id"},
        ],
    }
    for code, changes in bad.items():
        for change in changes:
            answer = await set_auto_recharge(paying_service, org.org, **{**SETTINGS, **change})
            assert answer == {"codes": [code]}, (change, answer)
    assert await auto_recharge_of(paying_service, org.org) is None
    assert await _rules(org) == []
    on = await set_auto_recharge(paying_service, org.org, **SETTINGS)
    shown = (on["enabled"], on["pack"], on["currency"], on["chargedThisMonth"]["value"])
    assert shown == (True, "cheddar-50", "USD", "0.00")
    assert await _rules(org) == [{"kind": "AUTO_RECHARGE", "threshold": "50", "name": "auto-recharge"}]
    # The same rule again (or another cap) sends nothing: a replaced rule would fire afresh.
    await set_auto_recharge(paying_service, org.org, **{**SETTINGS, "monthlyCap": "300"})
    off = await set_auto_recharge(paying_service, org.org, **{**SETTINGS, "enabled": False})
    assert off["enabled"] is False and off["monthlyCap"]["value"] == "1500.00"
    assert await _rules(org) == []
    await set_auto_recharge(paying_service, org.org, **{**SETTINGS, "enabled": False})  # off again: nothing to remove
    assert (await auto_recharge_of(paying_service, org.org) or {})["enabled"] is False


async def test_without_a_stripe_key_set_auto_recharge_is_payments_not_configured(service: Service) -> None:
    org = await Ledger.create(service, "No Stripe")
    assert await set_auto_recharge(service, org.org, **SETTINGS) == {"codes": ["PAYMENTS_NOT_CONFIGURED"]}
    assert await sweep_recharges({"pool": None, "gateway": None}) == 0


async def auto_recharge_of(service: Service, org: str) -> dict[str, object] | None:
    body = await service.graphql("query($id: ID!) { autoRecharge(organizationId: $id) { enabled } }", id=org)
    assert "errors" not in body, body
    found: dict[str, object] | None = body["data"]["autoRecharge"]
    return found


async def _rules(org: Ledger) -> list[dict[str, str]]:
    read = await org.read("alerts { kind threshold name }")
    return [alert for alert in read["alerts"] if alert["kind"] == "AUTO_RECHARGE"]


async def _statuses(pool: asyncpg.Pool, org: Ledger, expected: list[str]) -> bool:
    return [row["status"] for row in await recharges(pool, org.org)] == expected
