"""Renewal notices (seed 000: auto-renewal on by default, a notice 7 days before): the hourly job
on a simulated clock sends one RENEWAL_NOTICE per billing period, from 7 days before its end, and
none for a subscription that cancels at its period's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from jobs.recharge import send_renewal_notices
from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Interval
from ledger.subscriptions import periods
from ledger.subscriptions.effects import LedgerEffects
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.recharge_setup import alert_events
from tests.subscription_calls import SUBSCRIPTION, call, mailbox_of

ZONE = "America/New_York"


async def subscribe(service: Service, name: str, anchor: datetime) -> tuple[Ledger, dict[str, Any]]:
    org = await Ledger.create(service, name)
    answer = await call(service, "subscribe", SUBSCRIPTION, organizationId=org.org, plan="seatsco-team", seats=2,
                        anchor=anchor.isoformat(), timezone=ZONE, idempotencyKey=f"subscribe-{name}")  # fmt: skip
    assert "codes" not in answer, answer
    return org, answer


async def test_one_notice_per_period_from_seven_days_before_it_renews(service: Service, pool: asyncpg.Pool) -> None:
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(days=15)
    renewing, subscription = await subscribe(service, "Renewing", anchor)
    cancelling, _ = await subscribe(service, "Cancelling", anchor)
    cancelled = await call(service, "cancelSubscription", "cancelAtPeriodEnd", organizationId=cancelling.org)
    assert cancelled == {"cancelAtPeriodEnd": True}
    end = datetime.fromisoformat(subscription["currentPeriod"]["end"])
    async with mailbox_of(service) as mailbox:
        effects = LedgerEffects(mailbox)

        async def run_at(at: datetime) -> int:
            return await send_renewal_notices({"pool": pool, "effects": effects, "clock": lambda: at})

        assert await run_at(end - timedelta(days=7, seconds=1)) == 0  # not yet
        assert await run_at(end - timedelta(days=7)) == 1  # 7 days before: the renewing one only
        for hours in (1, 24, 24 * 6):  # the hourly runs after it send nothing more for the period
            assert await run_at(end - timedelta(days=7) + timedelta(hours=hours)) == 0
        next_end = Calendar.of(anchor, ZONE, Interval.MONTHLY).period(subscription["currentPeriod"]["index"] + 1).end
        assert await run_at(next_end - timedelta(days=3)) == 1  # the next period: one more
        assert await run_at(next_end - timedelta(days=2)) == 0
    events = await alert_events(pool, renewing.org, "renewal_notice")
    assert [event["name"] for event in events] == [
        f"renews on {end.astimezone(ZoneInfo(ZONE)).date().isoformat()}",
        f"renews on {next_end.astimezone(ZoneInfo(ZONE)).date().isoformat()}",
    ]
    assert all(event["state"] == "triggered" for event in events)
    assert await alert_events(pool, cancelling.org, "renewal_notice") == []
    facts = [f for f in await periods.facts_of(pool, UUID(subscription["id"])) if f.reason == "renewal_notice"]
    assert [(f.period_end, f.transaction_id is not None) for f in facts] == [(end, True), (next_end, True)]
    assert facts[0].idempotency_key == f"period:{subscription['id']}:{facts[0].period_start.isoformat()}:renewal_notice"
