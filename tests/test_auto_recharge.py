"""Auto-recharge end to end (seed 004), against localstripe, the real ledger worker and the jobs'
own functions: once per crossing however many clients cross at once and however many runners wake,
re-armed by the grant, woken by the LISTEN within moments (no cron runs here)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

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
from tests.stripe_fake import CARD_OK, FakeStripe


async def succeeded(pool: asyncpg.Pool, org: Ledger, count: int) -> bool:
    rows = await recharges(pool, org.org)
    return len(rows) == count and all(row["status"] == "succeeded" for row in rows)


async def test_32_concurrent_clients_crossing_the_threshold_recharge_exactly_once_and_the_grant_rearms_it(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "100")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        settings = await set_auto_recharge(paying_service, org.org, enabled=True, threshold="50", pack="cheddar-50",
                                           monthlyCap="600")  # fmt: skip
        assert settings["enabled"] and settings["threshold"] == "50" and settings["monthlyCap"]["value"] == "600.00"
        await start_recharge_listener(ctx)
        try:
            await use(org, 32)  # 100 - 64 = 36: one crossing of 50
            # Runners racing the wake-up for the same crossing change nothing.
            # (Each as another worker would: without this worker's turn-taking lock.)
            await asyncio.gather(*(sweep_recharges({**ctx, "recharge_pass_lock": None}) for _ in range(4)))
            await eventually(lambda: succeeded(pool, org, 1))
            assert len(intents_of(stripe, customer)) == 1
            [lot] = await purchased_lots(org)
            assert Decimal(lot["amount"]) == 50
            assert await org.balance() == {"total": "86", "held": "0", "available": "86"}
            # The grant lifted the balance above the threshold: the rule resolved (re-armed).
            events = await alert_events(pool, org.org, "auto_recharge")
            assert [event["state"] for event in events] == ["triggered", "resolved"]
            # A second crossing later recharges again, once; the LISTEN alone wakes it within moments.
            passes = ctx["recharge_listener"].passes
            await use(org, 20)  # 86 - 40 = 46
            took = await eventually(lambda: succeeded(pool, org, 2))
            assert took < 2.0, took
            assert ctx["recharge_listener"].passes > passes
            await asyncio.gather(*(sweep_recharges(ctx) for _ in range(3)))
        finally:
            await stop_recharge_listener(ctx)
    assert len(intents_of(stripe, customer)) == 2
    assert len(await purchased_lots(org)) == 2
    assert len(await recharges(pool, org.org)) == 2
    assert (await org.balance())["total"] == "96"
    shown = await auto_recharge(paying_service, org.org)
    assert shown["chargedThisMonth"]["value"] == "300.00"
    assert [r["status"] for r in shown["recharges"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert all(r["money"]["value"] == "150.00" and r["paymentId"] for r in shown["recharges"])


async def test_the_monthly_cap_is_never_passed(paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool) -> None:
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        # $150 a pack, at most $300 a month: two recharges fit, the third would pass the cap.
        await set_auto_recharge(paying_service, org.org, enabled=True, threshold="50", pack="cheddar-50",
                                monthlyCap="300")  # fmt: skip
        for crossing in (1, 2, 3):
            await use(org, 6 if crossing == 1 else 26)  # 60 -> 48, then 98 -> 46 each time
            assert await sweep_recharges(ctx) == 1
        assert await sweep_recharges(ctx) == 0
    rows = await recharges(pool, org.org)
    assert [row["status"] for row in rows] == ["succeeded", "succeeded", "over_cap"]
    assert sum(row["amount"] for row in rows) == 30_000 and rows[2]["amount"] == 0
    assert len(intents_of(stripe, customer)) == 2
    [failed] = await alert_events(pool, org.org, "auto_recharge_failed")
    assert failed["name"] == "monthly cap reached"
    assert (failed["value"], failed["threshold"]) == (30_000, 30_000)
    shown = await auto_recharge(paying_service, org.org)
    assert shown["chargedThisMonth"]["value"] == "300.00"
    assert shown["recharges"][0]["status"] == "OVER_CAP" and "monthly cap" in shown["recharges"][0]["detail"]


async def auto_recharge(service: Service, org: str) -> dict[str, Any]:
    body = await service.graphql(
        """query($id: ID!) { autoRecharge(organizationId: $id) { enabled chargedThisMonth { value }
             recharges { status money { value } paymentId detail } } }""",
        id=org,
    )
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["autoRecharge"]
    return found


async def test_enabling_it_below_the_threshold_recharges_at_once_on_the_new_settings(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "20")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        await start_recharge_listener(ctx)
        try:
            # The new rule fires as it is set; the wake-up's decision waits for the settings it fired on.
            await set_auto_recharge(paying_service, org.org, enabled=True, threshold="50", pack="cheddar-20",
                                    monthlyCap="60")  # fmt: skip
            await eventually(lambda: succeeded(pool, org, 1))
            assert await sweep_recharges(ctx) == 0
        finally:
            await stop_recharge_listener(ctx)
    assert len(intents_of(stripe, customer)) == 1
    assert (await org.balance())["total"] == "40"  # 20 + 20: still below, and no second charge for it
