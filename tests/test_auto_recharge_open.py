"""Auto-recharge charges a crossing only while it is open, and its monthly cap counts the money
recharges took or may still take: a crossing resolved before any runner took it, or older than
`recharge_crossing_max_age_s`, is recorded `disabled` and charges nothing; a recharge whose charge
was made before a crash is resumed from its payment (not failed because the settings changed); a
recharge failed for authentication keeps counting against the cap (its intent stays open)."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import pytest

from jobs.recharge import sweep_recharges
from ledger import constants
from ledger.core.errors import Unavailable
from ledger.payments import auto_recharge
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.payments_support import jobs_context
from tests.recharge_setup import (
    funded,
    intents_of,
    purchased_lots,
    recharges,
    set_auto_recharge,
    use,
    with_card,
)
from tests.stripe_fake import CARD_3DS, CARD_OK, FakeStripe

SETTINGS = {"enabled": True, "threshold": "50", "pack": "cheddar-50", "monthlyCap": "600"}


async def _rows(pool: asyncpg.Pool, org: Ledger) -> list[tuple[str, str]]:
    return [(row["status"], row["detail"]) for row in await recharges(pool, org.org)]


async def test_a_crossing_resolved_before_a_runner_took_it_charges_nothing_and_the_rule_rearms(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        await set_auto_recharge(paying_service, org.org, **SETTINGS)
        await use(org, 6)  # 60 -> 48: a crossing, and no runner is up
        await org.accepted("grantCredits", amount="100")  # 48 -> 148: RESOLVED
        assert await sweep_recharges(ctx) == 1
        assert await _rows(pool, org) == [("disabled", "resolved")]
        assert intents_of(stripe, customer) == []
        assert (await org.balance())["total"] == "148"
        await use(org, 50)  # 148 -> 48: a new crossing, open: charged
        assert await sweep_recharges(ctx) == 1
    assert await _rows(pool, org) == [("disabled", "resolved"), ("succeeded", "")]
    assert len(intents_of(stripe, customer)) == 1


async def test_a_crossing_older_than_the_bound_is_stale_and_charges_nothing(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await funded(paying_service, "60")
    monkeypatch.setattr(constants, "recharge_crossing_max_age_s", 1)  # (alert events are append-only)
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        await set_auto_recharge(paying_service, org.org, **SETTINGS)
        await use(org, 6)
        await asyncio.sleep(1.5)  # the runner was down for longer than the bound
        assert await sweep_recharges(ctx) == 1
        assert await sweep_recharges(ctx) == 0
    assert await _rows(pool, org) == [("disabled", "stale")]
    assert intents_of(stripe, customer) == []
    assert await purchased_lots(org) == []


async def test_a_recharge_charged_before_a_crash_is_resumed_from_its_payment_after_the_settings_changed(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await funded(paying_service, "60")

    async def crash(*_: object) -> None:
        raise Unavailable("the process died after Stripe's answer")

    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        await set_auto_recharge(paying_service, org.org, **SETTINGS)
        await use(org, 6)
        with monkeypatch.context() as patched:
            patched.setattr(auto_recharge, "recharge_answered", crash)
            assert await sweep_recharges(ctx) == 0  # charged and granted, the row left started
        assert [row["status"] for row in await recharges(pool, org.org)] == ["started"]
        # Meanwhile the pack was changed (another price); the sweep resumes the recharge later.
        await set_auto_recharge(paying_service, org.org, **{**SETTINGS, "pack": "cheddar-20"})
        await pool.execute("UPDATE recharges SET updated_at = now() - interval '2 minutes' WHERE org_id = $1",
                           UUID(org.org))  # fmt: skip
        assert await sweep_recharges(ctx) == 1
    [row] = await recharges(pool, org.org)
    assert (row["status"], row["amount"]) == ("succeeded", 15_000) and row["payment_id"] is not None
    assert len(intents_of(stripe, customer)) == 1
    assert len(await purchased_lots(org)) == 1
    assert (await org.balance())["total"] == "98"


async def test_a_recharge_failed_for_authentication_still_counts_against_the_cap(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "60")
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_3DS)
        await set_auto_recharge(paying_service, org.org, **{**SETTINGS, "monthlyCap": "200"})
        await use(org, 6)
        assert await sweep_recharges(ctx) == 1  # off-session 3-D Secure: failed, its intent left open
        await org.accepted("grantCredits", amount="100")  # re-armed
        await use(org, 50)  # a second crossing: $150 more would pass the $200 cap
        assert await sweep_recharges(ctx) == 1
    statuses = [row["status"] for row in await recharges(pool, org.org)]
    assert statuses == ["failed", "over_cap"]
    [intent] = intents_of(stripe, customer)
    assert intent["status"] == "requires_action"


async def test_changing_the_settings_below_the_threshold_charges_no_new_crossing_until_the_balance_rises(
    paying_service: Service, stripe: FakeStripe, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "10")
    settings = {**SETTINGS, "threshold": "100", "pack": "cheddar-20", "monthlyCap": "1000"}
    async with jobs_context(paying_service, pool) as ctx:
        customer = await with_card(ctx, stripe, org.org, CARD_OK)
        await set_auto_recharge(paying_service, org.org, **settings)  # enabled below the threshold: charged
        assert await sweep_recharges(ctx) == 1
        assert (await org.balance())["total"] == "30"  # still below 100
        # A settings form saving on every change: new thresholds, off and on again. No new fall.
        for change in ({"threshold": "101"}, {"threshold": "100"}, {"enabled": False}, {"enabled": True}):
            await set_auto_recharge(paying_service, org.org, **{**settings, **change})
            await sweep_recharges(ctx)
        assert len(intents_of(stripe, customer)) == 1
        rows = await _rows(pool, org)
        assert rows[0] == ("succeeded", "") and len(rows) == 4
        assert all(status == "disabled" and detail.startswith("no new crossing") for status, detail in rows[1:])
        # The balance rises above the threshold and falls again: a new crossing, charged.
        await org.accepted("grantCredits", amount="200")  # 30 -> 230
        await use(org, 70)  # 230 -> 90
        assert await sweep_recharges(ctx) == 1
    assert len(intents_of(stripe, customer)) == 2
    assert (await _rows(pool, org))[-1] == ("succeeded", "")
