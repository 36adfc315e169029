"""The seeds' turnover through the API: subscribed with `subscribe` (the service turns the
subscription over at once, catching up an anchor in the past), read and used through GraphQL.

- ACT3 Creator (seed 001): the rollover bank never holds more than 66,000, and a bank lot older
  than six cycles has expired.
- ACT3 Starter: the trial stops generation after six months (usage refused with TRIAL_ENDED) and six
  months of 800 were granted, no more; an upgrade starts generation again.
- A period missed while the jobs were down is caught up in order by the real cron job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from jobs.turnover import advance_turnover
from ledger.core.state import add_months
from ledger.subscriptions import periods
from ledger.subscriptions.effects import LedgerEffects
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.subscription_calls import CHANGE, SUBSCRIPTION, call, mailbox_of, save_example_plans
from tests.test_turnover_store import lots_by_kind

CREDIT = 1_000_000
CAP = Decimal(66_000)


@pytest.fixture
async def plans(pool: asyncpg.Pool) -> None:
    await save_example_plans(pool)


async def subscribe(ledger: Ledger, plan: str, **fields: Any) -> dict[str, Any]:
    answer = await call(ledger.service, "subscribe", SUBSCRIPTION, organizationId=ledger.org, plan=plan,
                        idempotencyKey=f"subscribe-{plan}", **fields)  # fmt: skip
    assert "codes" not in answer, answer
    return answer


async def by_kind(ledger: Ledger) -> dict[str, Decimal]:
    read = await ledger.read("balanceByKind { kind total }")
    return {row["kind"]: Decimal(row["total"]) for row in read["balanceByKind"]}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_creators_bank_never_holds_more_than_66000_and_lots_older_than_six_cycles_expire(
    service: Service, plans: None
) -> None:
    act3 = await Ledger.create(service, "ACT3 creator")
    now = datetime.now(UTC)
    anchor = now - timedelta(days=300)  # ten periods back: caught up at once
    await subscribe(act3, "act3-creator", anchor=anchor.isoformat(), timezone="Europe/Berlin")
    # Nothing used: each month's 33,000 goes to the bank until it is full, the rest is breakage.
    assert await by_kind(act3) == {"BASE": Decimal(33_000), "ROLLOVER": CAP}
    rollover = [lot for lot in (await act3.lots()).values() if lot["kind"] == "ROLLOVER"]
    # Unused, a bank lot holds its amount from its start to its expiry: at no period's end (nor
    # anywhere between) did the bank hold more than the cap.
    for lot in rollover:
        start = when(lot["effectiveAt"])
        live = sum(Decimal(other["amount"]) for other in rollover
                   if when(other["effectiveAt"]) <= start < when(other["expiresAt"]))  # fmt: skip
        assert live <= CAP, (start, live)
    # Every lot lives six cycles; the oldest have ended (nothing left of them), the live ones are younger.
    for lot in rollover:
        assert when(lot["expiresAt"]) == add_months(when(lot["effectiveAt"]), 6)
    ended = [lot for lot in rollover if when(lot["expiresAt"]) <= now]
    assert ended and all(Decimal(lot["remaining"]) == 0 for lot in ended)
    assert all(when(lot["effectiveAt"]) > add_months(now, -6) for lot in rollover if Decimal(lot["remaining"]) > 0)
    # Monthly credits first, then the bank (seed 001).
    await act3.accepted("recordUsage", product="image.generation", quantity="1000")
    assert await by_kind(act3) == {"BASE": Decimal(23_000), "ROLLOVER": CAP}


async def test_starters_trial_stops_generation_after_six_months_unless_upgraded(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    act3 = await Ledger.create(service, "ACT3 starter")
    anchor = datetime.now(UTC) - timedelta(days=200)
    subscription = await subscribe(act3, "act3-starter", anchor=anchor.isoformat(), timezone="America/New_York")
    assert when(subscription["trialEndsAt"]) < datetime.now(UTC)
    await act3.rejected("recordUsage", "TRIAL_ENDED", product="image.generation", quantity="1")
    facts = await periods.facts_of(pool, UUID(subscription["id"]))
    bases = [fact for fact in facts if fact.reason == "base"]
    assert [fact.credits for fact in bases] == [800 * CREDIT] * 6  # six months of 800, then no more
    assert [fact.reason for fact in facts].count("trial_end") == 1
    read = await act3.read("access { status plan }")
    assert read["access"] == {"status": "TRIAL_ENDED", "plan": "act3-starter"}
    upgraded = await call(service, "changePlan", CHANGE, organizationId=act3.org, plan="act3-creator",
                          idempotencyKey="upgrade")  # fmt: skip
    assert upgraded["subscription"]["trialEndsAt"] is None
    await act3.accepted("recordUsage", product="image.generation", quantity="1")


async def test_periods_missed_while_the_jobs_were_down_are_caught_up_in_order(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    act3 = await Ledger.create(service, "ACT3 away")
    subscription = await subscribe(act3, "act3-creator", timezone="America/New_York")
    await act3.accepted("recordUsage", product="image.generation", quantity="1000")  # 10,000 of 33,000
    period_end = when(subscription["currentPeriod"]["end"])
    # The jobs come back two periods (and a day) later: the real cron job, on that clock.
    later = add_months(period_end, 1) + timedelta(days=1)
    async with mailbox_of(service) as mailbox:
        ctx = {"pool": pool, "effects": LedgerEffects(mailbox), "clock": lambda: later}
        assert await advance_turnover(ctx) == 6
        assert await advance_turnover(ctx) == 0  # a second run finds nothing
    facts = await periods.facts_of(pool, UUID(subscription["id"]))
    assert [(fact.reason, fact.period_start) for fact in facts if fact.reason != "charge"] == [
        ("base", when(subscription["currentPeriod"]["start"])), ("close", when(subscription["currentPeriod"]["start"])),
        ("base", period_end), ("close", period_end), ("base", facts[-1].period_start),
    ]  # fmt: skip
    # In order: period 0's close banked its 23,000 before period 1 was granted, period 1's close
    # banked all 33,000 of it (56,000 < the cap), and period 2's credits are there.
    org = UUID(act3.org)
    assert await lots_by_kind(pool, org, later) == {"base": 33_000 * CREDIT, "rollover": 56_000 * CREDIT}
