"""Subscriptions end to end through GraphQL, on the shipped example catalog: the seeds' plans
(SeatsCo's pooled seats for three AI products, MECLABS SELL's kits and members, ACT3's Archive),
seat and plan changes whose preview is exactly what the change then does, retries with one effect,
and bad input refused with a stable code, changing nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from ledger.billing.catalog import Interval
from ledger.billing.keys import change_key
from ledger.core.errors import CommandFailed, InvalidCommand
from ledger.core.money import MicroCredits
from ledger.subscriptions import checks, plan_changes, seats, store, turnover
from ledger.subscriptions import service as subscriptions
from ledger.subscriptions.plan_effects import base_grant, send
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.subscription_calls import CHANGE, SUBSCRIPTION, call, mailbox_of, preview, save_example_plans

CREDIT = 1_000_000


@pytest.fixture
async def plans(pool: asyncpg.Pool) -> None:
    await save_example_plans(pool)


def credits(text: str) -> Decimal:
    return Decimal(text)


async def subscribe(ledger: Ledger, plan: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("idempotencyKey", f"subscribe-{plan}")
    answer = await call(ledger.service, "subscribe", SUBSCRIPTION, organizationId=ledger.org, plan=plan, **fields)
    assert "codes" not in answer, answer
    return answer


async def test_seatsco_pools_four_seats_for_its_three_ai_products_and_prorates_the_fifth(
    service: Service, plans: None
) -> None:
    seatsco = await Ledger.create(service, "SeatsCo")
    subscription = await subscribe(seatsco, "seatsco-team", interval="ANNUAL", seats=4, timezone="America/New_York")
    assert (subscription["status"], subscription["seats"], subscription["plan"]["key"]) == ("ACTIVE", 4, "seatsco-team")
    assert subscription["features"]["monthlyCredits"] == "400"
    assert subscription["features"]["products"] == ["ai.assistant", "ai.preview", "ai.summary"]
    assert (await seatsco.balance())["total"] == "400"
    await seatsco.accepted("recordUsage", product="ai.assistant", quantity="10")
    await seatsco.rejected("recordUsage", "PRODUCT_NOT_IN_PLAN", product="gpt-4o.input-tokens", quantity="10")

    shown = await preview(service, "previewSeatChange", organizationId=seatsco.org, seats=5)
    (line,) = shown["lines"]
    assert (shown["immediate"], shown["seatsBefore"], shown["seatsAfter"], line["unitPrice"]) == (True, 4, 5, "100")
    made = await call(service, "setSeats", CHANGE, organizationId=seatsco.org, seats=5, idempotencyKey="seat-5",
                      prorationAt=shown["at"])  # fmt: skip
    assert made["proration"] == shown  # the preview is exactly what the change did
    assert made["subscription"]["seats"] == 5
    # What the change granted is a base lot for the AI products that ends with the month.
    after = credits("390") + credits(shown["credits"])
    assert credits((await seatsco.balance())["total"]) == after
    again = await call(service, "setSeats", CHANGE, organizationId=seatsco.org, seats=5, idempotencyKey="seat-5")
    assert (again["changeId"], again["proration"]) == (made["changeId"], made["proration"])
    assert credits((await seatsco.balance())["total"]) == after
    other = await call(service, "setSeats", CHANGE, organizationId=seatsco.org, seats=6, idempotencyKey="seat-5")
    assert other["codes"] == ["IDEMPOTENCY_CONFLICT"]

    back = await call(service, "setSeats", CHANGE, organizationId=seatsco.org, seats=4, idempotencyKey="seat-4")
    assert Decimal(back["proration"]["money"]) < 0 and credits(back["proration"]["credits"]) < 0
    assert credits((await seatsco.balance())["total"]) == after + credits(back["proration"]["credits"])


async def test_the_fifth_seat_added_at_exactly_half_the_month_brings_exactly_fifty_credits(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    seatsco = await Ledger.create(service, "SeatsCo")
    now = datetime.now(UTC).replace(microsecond=0)
    anchor = now - timedelta(days=20)
    request = subscriptions.SubscribeRequest(
        UUID(seatsco.org), "seatsco-team", Interval.ANNUAL, 4, anchor, "UTC", "seatsco"
    )
    async with mailbox_of(service) as mailbox:
        subscription = await subscriptions.subscribe(pool, mailbox, request)
        month = subscription.credit_calendar.period_at(now)
        half = month.start + (month.end - month.start) / 2
        result = await seats.set_seats(pool, mailbox, subscription.organization_id, 5, "fifth", at=half)
    assert result.proration.credit_fraction == Fraction(1, 2)
    assert result.proration.credits == 50 * CREDIT
    year = subscription.billing_calendar.period_at(now)
    left = Decimal(int((year.end - half).total_seconds())) / Decimal(year.seconds)
    assert result.proration.amount == (Decimal(100) * left).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert (await seatsco.balance())["total"] == "450"


async def test_meclabs_sell_allows_ten_kits_and_twelve_members_and_prices_the_eleventh_kit(
    service: Service, plans: None
) -> None:
    meclabs = await Ledger.create(service, "MECLABS customer")
    subscription = await subscribe(meclabs, "meclabs-sell")
    assert subscription["features"]["membersMax"] == 12 and subscription["features"]["kitsIncluded"] == 10
    assert (await meclabs.balance())["total"] == "18000"
    add = "mutation($input: AddMemberInput!) { addMember(input: $input) { userId kit } }"
    for n in range(12):
        member = {"organizationId": meclabs.org, "userId": f"user-{n}", "role": "CREATOR"}
        body = await service.graphql(add, input={**member, "kit": f"kit-{n}"} if n < 11 else member)
        assert "errors" not in body, body
    refused = await service.graphql(add, input={"organizationId": meclabs.org, "userId": "user-13", "role": "VIEWER"})
    assert refused["errors"][0]["extensions"]["code"] == "LIMIT_REACHED"
    kits = (await meclabs.read(f"subscription {{ {SUBSCRIPTION} }}"))["subscription"]["kits"]
    assert kits == {"included": 10, "used": 11, "extra": 1, "extraPrice": "20", "extraAmount": "20"}


async def test_an_upgrade_does_exactly_what_its_preview_said_and_a_downgrade_waits_for_the_period_end(
    service: Service, plans: None
) -> None:
    meclabs = await Ledger.create(service, "MECLABS customer")
    await subscribe(meclabs, "meclabs-sell")
    shown = await preview(service, "previewPlanChange", organizationId=meclabs.org, plan="meclabs-scale")
    (line,) = shown["lines"]
    assert (shown["immediate"], line["kind"], line["unitPrice"]) == (True, "proration", "2000")
    assert Decimal(shown["money"]) == Decimal(line["money"]) and 0 < Decimal(line["money"]) <= 2000
    made = await call(service, "changePlan", CHANGE, organizationId=meclabs.org, plan="meclabs-scale",
                      idempotencyKey="up", prorationAt=shown["at"])  # fmt: skip
    assert made["proration"] == shown
    assert made["subscription"]["plan"]["key"] == "meclabs-scale"
    # The new plan's credits for the rest of the month come on top of the old period's, kept.
    balance = credits("18000") + credits(shown["credits"])
    assert credits((await meclabs.balance())["total"]) == balance
    assert (await meclabs.read("limits { memberLimit kitLimit }"))["limits"] == {"memberLimit": 30, "kitLimit": None}
    again = await call(service, "changePlan", CHANGE, organizationId=meclabs.org, plan="meclabs-scale",
                       idempotencyKey="up")  # fmt: skip
    assert (again["changeId"], again["proration"]) == (made["changeId"], made["proration"])
    assert credits((await meclabs.balance())["total"]) == balance

    down = await call(service, "changePlan", CHANGE, organizationId=meclabs.org, plan="meclabs-build",
                      idempotencyKey="down")  # fmt: skip
    period = down["subscription"]["currentPeriod"]
    assert (down["proration"]["immediate"], down["proration"]["effectiveAt"], down["proration"]["lines"]) == (
        False, period["end"], [],
    )  # fmt: skip
    assert (down["subscription"]["plan"]["key"], down["subscription"]["pendingPlan"]) == (
        "meclabs-scale", {"key": "meclabs-build"},
    )  # fmt: skip
    stay = await call(service, "changePlan", CHANGE, organizationId=meclabs.org, plan="meclabs-scale",
                      idempotencyKey="stay")  # fmt: skip
    assert (stay["subscription"]["pendingPlan"], stay["changeId"]) == (None, None)


async def test_archive_refuses_usage_once_in_force_while_history_stays_readable(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    act3 = await Ledger.create(service, "ACT3 studio")
    subscribed = await subscribe(act3, "act3-studio")
    await act3.accepted("recordUsage", product="quality.q1", quantity="1")
    archive = await call(service, "changePlan", CHANGE, organizationId=act3.org, plan="act3-archive",
                         idempotencyKey="archive")  # fmt: skip
    end = datetime.fromisoformat(subscribed["currentPeriod"]["end"])
    assert archive["proration"]["immediate"] is False
    assert datetime.fromisoformat(archive["subscription"]["mediaPurgeAt"]) == end + timedelta(days=30)
    await act3.accepted("recordUsage", product="quality.q1", quantity="1")  # not in force yet
    catalog = await save_example_plans(pool)
    async with mailbox_of(service) as mailbox:
        await turnover.advance_subscription(pool, mailbox, catalog, UUID(subscribed["id"]), end + timedelta(seconds=1))
    await act3.rejected("recordUsage", "PLAN_INACTIVE", product="quality.q1", quantity="1")
    read = await act3.read(
        f"subscription {{ {SUBSCRIPTION} }} transactions(first: 20) {{ edges {{ node {{ commandType status }} }} }}"
    )
    assert read["subscription"]["status"] == "ARCHIVED" and read["subscription"]["plan"]["key"] == "act3-archive"
    usage = [edge["node"] for edge in read["transactions"]["edges"] if edge["node"]["commandType"] == "record_usage"]
    assert [node["status"] for node in usage] == ["REJECTED", "ACCEPTED", "ACCEPTED"]  # newest first


async def test_bad_input_gets_a_clear_code_and_changes_nothing_and_retries_answer_the_same(
    service: Service, plans: None
) -> None:
    org = await Ledger.create(service, "Careful customer")
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    for fields, code in [
        ({"plan": "no-such-plan"}, "NOT_FOUND"),
        ({"plan": "act3-creator", "timezone": "Mars/Olympus_Mons"}, "INVALID_INPUT"),
        ({"plan": "seatsco-team", "seats": 100_001}, "INVALID_INPUT"),
        ({"plan": "seatsco-team", "seats": -1}, "INVALID_INPUT"),
        ({"plan": "seatsco-team", "seats": 0}, "INVALID_INPUT"),
        ({"plan": "act3-creator", "anchor": far}, "INVALID_INPUT"),
        ({"plan": "act3-creator", "interval": "ANNUAL"}, "INVALID_INPUT"),
        ({"plan": "act3-creator", "idempotencyKey": " "}, "INVALID_INPUT"),
    ]:
        answer = await call(service, "subscribe", "id", organizationId=org.org, **{"idempotencyKey": "k", **fields})
        assert answer.get("codes") == [code], (fields, answer)
    assert await org.read("subscription { id } limits { memberLimit kitLimit } balance { total }") == {
        "subscription": None, "limits": {"memberLimit": None, "kitLimit": None}, "balance": {"total": "0"},
    }  # fmt: skip
    none = await call(service, "setSeats", "changeId", organizationId=org.org, seats=2, idempotencyKey="s")
    assert none["codes"] == ["NOT_FOUND"]

    first = await subscribe(org, "act3-creator", idempotencyKey="k")
    assert (await subscribe(org, "act3-creator", idempotencyKey="k"))["id"] == first["id"]
    other = await call(service, "subscribe", "id", organizationId=org.org, plan="act3-studio", idempotencyKey="k")
    assert other["codes"] == ["IDEMPOTENCY_CONFLICT"]
    second = await call(service, "subscribe", "id", organizationId=org.org, plan="act3-studio", idempotencyKey="k2")
    assert second["codes"] == ["SUBSCRIPTION_EXISTS"]
    assert (await org.balance())["total"] == "33000"

    cancelled = await call(service, "cancelSubscription", SUBSCRIPTION, organizationId=org.org)
    assert (cancelled["cancelAtPeriodEnd"], cancelled["nextRenewalAt"]) == (True, None)
    assert cancelled["endsAt"] == cancelled["currentPeriod"]["end"]
    resumed = await call(service, "resumeSubscription", SUBSCRIPTION, organizationId=org.org)
    assert (resumed["cancelAtPeriodEnd"], resumed["endsAt"]) == (False, None)
    assert resumed["nextRenewalAt"] == resumed["currentPeriod"]["end"]
    stale = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    late = await preview(service, "previewPlanChange", organizationId=org.org, plan="act3-studio", prorationAt=stale)
    assert late["codes"] == ["INVALID_INPUT"]


async def test_concurrent_subscribes_make_one_subscription(service: Service, plans: None) -> None:
    org = await Ledger.create(service, "Racing customer")
    same = await asyncio.gather(*(call(service, "subscribe", "id", organizationId=org.org, plan="act3-creator",
                                       idempotencyKey="race") for _ in range(4)))  # fmt: skip
    assert len({answer.get("id") for answer in same}) == 1, same
    others = await asyncio.gather(*(call(service, "subscribe", "id", organizationId=org.org, plan="act3-creator",
                                         idempotencyKey=f"other-{n}") for n in range(3)))  # fmt: skip
    assert [answer.get("codes") for answer in others] == [["SUBSCRIPTION_EXISTS"]] * 3
    assert (await org.balance())["total"] == "33000"  # one first period granted, however many asked


async def test_a_seat_round_trip_credits_back_only_the_share_of_credits_it_could_take_back(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    seatsco = await Ledger.create(service, "SeatsCo")
    now = datetime.now(UTC).replace(microsecond=0)
    request = subscriptions.SubscribeRequest(
        UUID(seatsco.org), "seatsco-team", Interval.MONTHLY, 1, now - timedelta(days=1), "UTC", "round-trip"
    )
    async with mailbox_of(service) as mailbox:
        subscription = await subscriptions.subscribe(pool, mailbox, request)
        org, at = subscription.organization_id, now - timedelta(seconds=30)
        up = await seats.set_seats(pool, mailbox, org, 100_000, "up", at=at)
        granted = up.proration.credits
        spent = granted // 2 // CREDIT
        await seatsco.accepted("recordUsage", product="ai.assistant", quantity=str(spent))
        with pytest.raises(InvalidCommand):  # the same instant as the increase: refused
            await seats.set_seats(pool, mailbox, org, 1, "down", at=at)
        down = await seats.set_seats(pool, mailbox, org, 1, "down", at=at + timedelta(seconds=1))
        again = await seats.set_seats(pool, mailbox, org, 1, "down", at=at + timedelta(seconds=1))
    requested = -seats.seat_proration(up.subscription, await save_example_plans(pool), 1, down.proration.at).credits
    revoked = -down.proration.credits
    assert 0 < revoked < requested
    full = seats.seat_proration(up.subscription, await save_example_plans(pool), 1, down.proration.at).amount
    assert down.proration.amount == (full * Decimal(revoked) / Decimal(requested)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    assert down.change.amount == down.proration.amount and again.proration.amount == down.proration.amount
    assert up.proration.amount + down.proration.amount > 0  # the spent credits stay paid for


async def test_a_change_whose_ledger_command_is_refused_records_nothing(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(service, "Refused")
    now = datetime.now(UTC).replace(microsecond=0)
    request = subscriptions.SubscribeRequest(
        UUID(org.org), "meclabs-sell", Interval.MONTHLY, 1, now - timedelta(days=1), "UTC", "refused"
    )
    sell = (await save_example_plans(pool)).plan_at("meclabs-sell", now)
    assert sell is not None
    async with mailbox_of(service) as mailbox:
        s = await subscriptions.subscribe(pool, mailbox, request)
        at, month = now - timedelta(seconds=5), s.credit_calendar.period_at(now)
        async with pool.acquire() as connection:
            charges = await store.charges_of(connection, s.organization_id, s.id)
        # The change's key was used before with another payload: the ledger refuses its command.
        upgrade = change_key(s.id, checks.change_id_for(s.id, "plan", "up"), "upgrade")
        await send(mailbox, s.organization_id, [(upgrade, base_grant(sell, MicroCredits(CREDIT), month))], now)
        with pytest.raises(CommandFailed):
            await plan_changes.change_plan(pool, mailbox, s.organization_id, "meclabs-scale", "up", at=at)
    async with pool.acquire() as connection:
        assert await store.plan_change_by_id(connection, checks.change_id_for(s.id, "plan", "up")) is None
        assert await store.charges_of(connection, s.organization_id, s.id) == charges
        after = await store.subscription_by_id(connection, s.id)
    assert after is not None and (after.plan_key, after.segments) == ("meclabs-sell", s.segments)


async def test_a_change_after_a_period_start_the_turnover_has_not_reached_sees_the_pending_downgrade_applied(
    service: Service, plans: None, pool: asyncpg.Pool
) -> None:
    org = await Ledger.create(service, "Behind")
    now = datetime.now(UTC).replace(microsecond=0)
    anchor = now - timedelta(days=35)
    request = subscriptions.SubscribeRequest(UUID(org.org), "meclabs-scale", Interval.MONTHLY, 1, anchor, "UTC", "b")
    then = anchor + timedelta(hours=1)
    async with mailbox_of(service) as mailbox:
        s = await subscriptions.subscribe(pool, mailbox, request, now=then)
        down = await plan_changes.change_plan(
            pool, mailbox, s.organization_id, "meclabs-sell", "down", at=then, now=then
        )
        assert not down.proration.immediate  # SELL from the next period's start; no turnover has run since
        shown = await plan_changes.preview_plan_change(pool, s.organization_id, "meclabs-scale", effects=mailbox)
        up = await plan_changes.change_plan(pool, mailbox, s.organization_id, "meclabs-scale", "up", at=shown.at)
    # The downgrade was applied at the period's start first: this is an upgrade out of SELL (not an undo).
    assert (shown.plan_before.key, shown.immediate) == ("meclabs-sell", True)
    assert up.change_id is not None and up.proration == shown
    assert up.subscription.plan_key == "meclabs-scale"
