"""The customers' worked examples (../shared/seeds), replayed through the GraphQL API and the ledger
worker. The `service` fixture re-verifies the whole journal from PostgreSQL after each test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.core.state import add_months
from tests.conftest import Service
from tests.ledger_api import Ledger


def _by_parent(lots: dict[str, dict[str, object]], parent: str) -> dict[str, object]:
    (lot,) = [lot for lot in lots.values() if lot["parentId"] == parent]
    return lot


async def test_meclabs_priority_then_teams_budgets_and_caps(service: Service) -> None:
    """Seed 000: expiring bonus, then base, then purchased; org → team → user credits."""
    org = await Ledger.create(service, "MECLABS")
    now = datetime.now(UTC)
    purchased = (await org.accepted("grantCredits", amount="100", kind="PURCHASED"))["lotId"]
    base = (await org.accepted("grantCredits", amount="200", kind="BASE", expiresAt=now + timedelta(days=30)))["lotId"]
    bonus = (await org.accepted("grantCredits", amount="50", kind="BONUS", expiresAt=now + timedelta(days=90)))["lotId"]

    await org.accepted("recordUsage", product="sms.message", quantity="120")
    lots = await org.lots()
    assert (lots[bonus]["remaining"], lots[base]["remaining"], lots[purchased]["remaining"]) == ("0", "130", "100")
    used = await org.accepted("recordUsage", product="sms.message", quantity="200")
    assert used["balanceAfter"] == "30"
    lots = await org.lots()
    assert (lots[base]["remaining"], lots[purchased]["remaining"]) == ("0", "30")
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="31")
    assert (await org.balance())["total"] == "30"

    team = await org.team("Growth")
    await org.accepted("transferCredits", amount="20", toTeamId=team)
    team_lot = _by_parent(await org.lots(), purchased)
    assert (team_lot["teamId"], team_lot["kind"], team_lot["remaining"]) == (team, "PURCHASED", "20")
    await org.accepted("setTeamBudget", teamId=team, amount="15")
    await org.accepted("recordUsage", product="sms.message", quantity="10", teamId=team)
    assert (await org.lots())[team_lot["id"]]["remaining"] == "10"  # the team's own lot went first
    await org.rejected("recordUsage", "CAP_EXCEEDED", product="sms.message", quantity="6", teamId=team)
    await org.accepted("setMemberLimits", userId="ana", cap="3")
    await org.rejected("recordUsage", "CAP_EXCEEDED", product="sms.message", quantity="4", teamId=team, userId="ana")
    await org.accepted("recordUsage", product="sms.message", quantity="3", teamId=team, userId="ana")
    await org.accepted("transferCredits", amount="7", fromTeamId=team)
    assert (await org.balance())["total"] == "17"


async def test_act3_creator_rollover_bank(service: Service) -> None:
    """Seed 001: 33,000 a month; unused goes to the bank up to 66,000; banked credits last six
    cycles; the month's credits are spent before the bank."""
    org = await Ledger.create(service, "ACT3 creator")
    first = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def month(i: int) -> datetime:
        return add_months(first, i - 12)  # a year of history, all in the past

    bases: dict[int, str] = {}
    for i, used in ((1, 3_000), (2, 13_000), (3, 0), (4, 40_000)):
        bases[i] = (
            await org.accepted(
                "grantCredits", amount="33000", kind="BASE", effectiveAt=month(i), expiresAt=month(i + 1),
                rollover={"cap": "66000", "cycles": 6}, source="SUBSCRIPTION",
            )
        )["lotId"]  # fmt: skip
        if used:
            occurred = month(i) + timedelta(days=10)
            await org.accepted("recordUsage", product="sms.message", quantity=str(used), occurredAt=occurred)
        await org.accepted("expireCredits", asOf=month(i + 1))

    lots = await org.lots()
    banks = [_by_parent(lots, bases[i]) for i in (1, 2, 3)]
    assert [(b["kind"], b["amount"]) for b in banks] == [
        ("ROLLOVER", "30000"),
        ("ROLLOVER", "20000"),
        ("ROLLOVER", "16000"),
    ]
    assert [b["expiresAt"] for b in banks] == [month(i + 7).isoformat() for i in (1, 2, 3)]  # six cycles on
    # Month 4 spent its own 33,000 first, then 7,000 from the bank lot expiring soonest.
    assert lots[bases[4]]["remaining"] == "0"
    assert [b["remaining"] for b in banks] == ["23000", "20000", "16000"]

    await org.accepted("expireCredits", asOf=month(8))  # the first bank lot's six cycles are over
    lots = await org.lots()
    assert [lots[str(b["id"])]["remaining"] for b in banks] == ["0", "20000", "16000"]


async def test_act3_calculate_and_binding_quote(service: Service) -> None:
    """Seed 001's "Calculate": Q3 = 400 credits, priced before spending; a binding quote holds its
    price even when the rate card changes."""
    org = await Ledger.create(service, "ACT3 studio")
    await org.accepted("grantCredits", amount="2000")
    estimate = """query($o: ID!, $q: Quantity!) {
        estimateUsage(organizationId: $o, product: "quality.q3", quantity: $q) { credits affordable code } }"""
    body = await service.graphql(estimate, o=org.org, q="1")
    assert body["data"]["estimateUsage"] == {"credits": "400", "affordable": True, "code": None}
    body = await service.graphql(estimate, o=org.org, q="6")
    assert body["data"]["estimateUsage"] == {"credits": "2400", "affordable": False, "code": "INSUFFICIENT_CREDITS"}

    now = datetime.now(UTC)
    quote = await org.accepted("issueQuote", product="quality.q3", quantity="2", expiresAt=now + timedelta(hours=1))
    assert (quote["details"]["credits"], quote["details"]["affordable"]) == ("800", "true")
    await org.accepted("setRate", product="quality.q3", creditsPerUnit="500", effectiveAt=now - timedelta(seconds=1))
    charged = await org.accepted("recordUsage", product="quality.q3", quantity="2", quoteId=quote["quoteId"])
    assert charged["creditsCharged"] == "800"
    await org.rejected("recordUsage", "QUOTE_UNUSABLE", product="quality.q3", quantity="2", quoteId=quote["quoteId"])
    assert (await org.accepted("recordUsage", product="quality.q3", quantity="1"))["creditsCharged"] == "500"
    assert (await org.balance())["total"] == "700"


async def test_seatsco_pooled_seats_top_up_and_user_cap(service: Service) -> None:
    """Seed 003: 4 seats x 100 AI credits pooled for the month on three AI products; a 1,000 credit
    top-up lasting a year is spent after them; a per-user cap; cut off at zero."""
    org = await Ledger.create(service, "SeatsCo customer")
    now = datetime.now(UTC)
    month_end = add_months(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)
    ai = ["ai.assistant", "ai.preview", "ai.summary"]
    seats = await org.accepted(
        "grantCredits", amount="400", kind="SEAT", expiresAt=month_end, products=ai, source="SUBSCRIPTION"
    )
    await org.accepted("recordUsage", product="ai.summary", quantity="60", userId="ana")  # 300 credits
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="1")  # not an AI product
    top_up = await org.accepted(
        "grantCredits", amount="1000", kind="PURCHASED", expiresAt=now + timedelta(days=365), products=ai,
        source="PAYMENT", pricePerCredit="0.08", currency="USD",
    )  # fmt: skip
    await org.accepted("recordUsage", product="ai.preview", quantity="75", userId="ben")  # 150 credits
    lots = await org.lots()
    assert (lots[seats["lotId"]]["remaining"], lots[top_up["lotId"]]["remaining"]) == ("0", "950")

    await org.accepted("setMemberLimits", userId="user_1234", cap="100")
    await org.accepted("recordUsage", product="ai.assistant", quantity="90", userId="user_1234")
    await org.rejected("recordUsage", "CAP_EXCEEDED", product="ai.assistant", quantity="20", userId="user_1234")
    await org.accepted("recordUsage", product="ai.summary", quantity="172", userId="carl")  # 860: all that is left
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="ai.assistant", quantity="1", userId="carl")
    assert (await org.balance())["total"] == "0"


async def test_brightmove_sms_batch_with_overage(service: Service) -> None:
    """Seed 002: a batch of 1,000 SMS, then overage billed at the SKU's overage rate."""
    org = await Ledger.create(service, "BrightMove customer")
    await org.accepted("setSpendingPolicy", atZero="OVERAGE", product="sms.message")
    await org.accepted(
        "grantCredits", amount="1000", kind="PURCHASED", products=["sms.message"],
        expiresAt=datetime.now(UTC) + timedelta(days=30),
    )  # fmt: skip
    for _ in range(2):
        await org.accepted("recordUsage", product="sms.message", quantity="400")
    last = await org.accepted("recordUsage", product="sms.message", quantity="400")
    assert last["creditsCharged"] == "400" and last["balanceAfter"] == "0"
    assert last["details"]["overage_credits"] == "200"
    assert Decimal(last["details"]["overage_amount"]) == Decimal("12.00")  # 200 messages at the seed's $0.06
    assert Decimal(last["details"]["cost"]) == Decimal("3.16")  # 400 at the carrier's $0.0079
    # Products without an overage policy still block at zero.
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="job.sponsorship", quantity="1")


async def test_cheddargetter_free_signup_credits_and_refundable_pack(service: Service) -> None:
    """Seed 004: 20 free credits at signup, no card; then a credit pack, refundable."""
    org = await Ledger.create(service, "CheddarGetter customer")
    await org.accepted(
        "grantCredits", amount="20", kind="PROMOTIONAL", source="PROMOTION", revenueTreatment="MARKETING"
    )
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="25")
    assert (await org.balance())["total"] == "20"  # a refused event takes nothing
    pack = await org.accepted(
        "grantCredits", amount="50", kind="PURCHASED", source="PAYMENT", refundable=True, pricePerCredit="3",
        currency="USD",
    )  # fmt: skip
    await org.accepted("recordUsage", product="sms.message", quantity="25")
    assert (await org.lots())[pack["lotId"]]["remaining"] == "45"
    refund = await org.accepted("refundLot", lotId=pack["lotId"], reason="customer asked")
    assert refund["details"]["credits_refunded"] == "45"
    assert Decimal(refund["details"]["amount_refunded"]) == Decimal(135)
    await org.rejected("refundLot", "NOT_REVERSIBLE", lotId=pack["lotId"])
    assert (await org.balance())["total"] == "0"


async def test_ai_job_hold_captures_and_credit_back(service: Service) -> None:
    """A streamed AI job: reserve, capture as it goes, finish; then credit back a failed step."""
    org = await Ledger.create(service, "Agents Inc")
    await org.accepted("grantCredits", amount="1000")
    expires = datetime.now(UTC) + timedelta(minutes=10)
    hold = (
        await org.accepted(
            "placeHold", amount="300", product="gpt-4o.output-tokens", expiresAt=expires, runId="run-1", cap="500"
        )
    )["holdId"]
    assert await org.balance() == {"total": "1000", "held": "300", "available": "700"}
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="750")

    step = await org.accepted("captureHold", holdId=hold, quantity="25000")  # 25,000 tokens at 0.004
    assert step["creditsCharged"] == "100"
    await org.accepted("captureHold", holdId=hold, amount="150")
    await org.rejected("captureHold", "CAP_EXCEEDED", holdId=hold, amount="300", final=True)
    last = await org.accepted("captureHold", holdId=hold, amount="200", final=True)  # 150 beyond the reserve
    assert await org.balance() == {"total": "550", "held": "0", "available": "550"}

    await org.accepted("creditBack", transactionId=last["transactionId"], reason="step failed")
    assert (await org.balance())["total"] == "750"
    await org.rejected("creditBack", "NOT_REVERSIBLE", transactionId=last["transactionId"])
    await org.rejected("releaseHold", "HOLD_CLOSED", holdId=hold)


async def test_negative_credit_limit_is_repaid_by_the_next_grant(service: Service) -> None:
    org = await Ledger.create(service, "Postpaid")
    await org.accepted("setSpendingPolicy", atZero="CREDIT_LIMIT", creditLimit="50")
    await org.accepted("grantCredits", amount="10")
    assert (await org.accepted("recordUsage", product="sms.message", quantity="40"))["balanceAfter"] == "-30"
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="25")
    assert (await org.accepted("grantCredits", amount="100"))["balanceAfter"] == "70"


async def test_an_org_overrides_the_consumption_order(service: Service) -> None:
    """Per-org order: this org spends purchased credits before its base credits."""
    org = await Ledger.create(service, "Reordered")
    await org.accepted("setKindPriorities", priorities=[{"kind": "PURCHASED", "priority": 150}])
    base = (await org.accepted("grantCredits", amount="10"))["lotId"]
    purchased = (await org.accepted("grantCredits", amount="10", kind="PURCHASED"))["lotId"]
    await org.accepted("recordUsage", product="sms.message", quantity="4")
    lots = await org.lots()
    assert (lots[base]["remaining"], lots[purchased]["remaining"], lots[purchased]["priority"]) == ("10", "6", 150)
