"""Revenue recognition: the policies on hand-made inputs (pure), then the report through GraphQL
from the ledger's own postings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from ledger.billing.revenue import (
    CurrencyRevenue,
    LotActivity,
    Movement,
    PricedLot,
    Refund,
    ServiceCharge,
    recognized_by,
    report,
)
from ledger.core.commands import LotKind, RevenueTreatment
from ledger.directory.api_keys import create_api_key
from ledger.directory.roles import Role
from tests.conftest import Service
from tests.ledger_api import Ledger

MARCH, APRIL, MAY = (datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5))
MICRO = 1_000_000


def plan(amount: int, start: datetime = MARCH, end: datetime = APRIL, key: str = "plan") -> ServiceCharge:
    return ServiceCharge((key,), "USD", amount, start, end)


def pack(
    credits: int, basis: int, granted_at: datetime = MARCH, treatment: RevenueTreatment = RevenueTreatment.DEFERRED
) -> PricedLot:
    return PricedLot(uuid4(), LotKind.PURCHASED, treatment, credits * MICRO, granted_at, basis, "USD", "pi_1")


def usd(found: tuple[CurrencyRevenue, ...]) -> CurrencyRevenue:
    (only,) = found
    assert only.currency == "USD"
    assert only.rolls_forward()
    return only


def test_a_monthly_fee_is_recognized_over_its_month() -> None:
    middle = MARCH + (APRIL - MARCH) / 2
    charge = plan(99500)
    assert (recognized_by(charge, MARCH), recognized_by(charge, middle), recognized_by(charge, APRIL)) == (
        0,
        49750,
        99500,
    )
    first_half = usd(report(MARCH, middle, [charge], []).currencies)
    assert first_half.subscription_recognized.amount == 49750
    assert first_half.subscription_deferred.amount == 49750
    assert first_half.subscription_recognized.sources == ["plan"]
    second_half = usd(report(middle, APRIL, [charge], []).currencies)
    assert second_half.subscription_recognized.amount == 49750 and second_half.subscription_deferred.amount == 0
    assert second_half.deferred_opening == 49750 and second_half.deferred_billed == 0


def test_an_annual_fee_is_deferred_but_for_the_month() -> None:
    year = plan(1_200_000, MARCH, datetime(2027, 3, 1, tzinfo=UTC))
    march = usd(report(MARCH, APRIL, [year], []).currencies)
    assert march.subscription_recognized.amount == round(1_200_000 * 31 / 365)
    assert march.subscription_recognized.amount + march.subscription_deferred.amount == 1_200_000


def test_a_proration_is_recognized_from_its_change() -> None:
    change = MARCH + timedelta(days=15)
    upgrade = plan(10000, change, APRIL, key="upgrade:x")
    before = usd(report(MARCH, change, [upgrade], []).currencies)
    assert before.subscription_recognized.amount == 0 and before.subscription_deferred.amount == 10000


def test_deferred_credits_are_recognized_as_consumed_and_expired_as_breakage() -> None:
    lot = pack(1000, 8000)  # $80 for 1,000 credits
    activity = LotActivity(
        lot,
        within={Movement.CONSUMED: 250 * MICRO, Movement.EXPIRED: 100 * MICRO},
        sources={Movement.CONSUMED: ["t-usage"], Movement.EXPIRED: ["t-expire"]},
    )
    found = usd(report(MARCH, APRIL, [], [activity]).currencies)
    assert found.purchased_recognized.amount == 2000 and found.purchased_recognized.sources == ["t-usage"]
    assert found.purchased_recognized.credits == 250 * MICRO
    assert found.breakage.amount == 800 and found.breakage.sources == ["t-expire"]
    assert found.purchased_deferred.amount == 5200 and found.purchased_deferred.credits == 650 * MICRO
    assert found.deferred_billed == 8000
    assert found.recognized == 2800


def test_immediate_credits_are_recognized_at_purchase() -> None:
    lot = pack(1000, 8000, treatment=RevenueTreatment.IMMEDIATE)
    found = usd(report(MARCH, APRIL, [], [LotActivity(lot, within={Movement.CONSUMED: 10 * MICRO})]).currencies)
    assert found.purchased_recognized.amount == 8000 and found.purchased_recognized.sources == ["pi_1"]
    assert found.purchased_deferred.amount == 0 and found.deferred_billed == 0
    later = report(APRIL, MAY, [], [LotActivity(lot, before=10 * MICRO, within={Movement.CONSUMED: MICRO})])
    assert usd(later.currencies).recognized == 0  # nothing more to recognize
    assert usd(later.currencies).purchased_deferred.amount == 0


def test_bonus_credits_consumed_are_a_marketing_expense() -> None:
    bonus = PricedLot(uuid4(), LotKind.BONUS, RevenueTreatment.DEFERRED, 500 * MICRO, MARCH)
    activity = LotActivity(bonus, within={Movement.CONSUMED: 200 * MICRO}, sources={Movement.CONSUMED: ["t-1"]})
    priced = report(MARCH, APRIL, [], [activity], credit_price=Decimal("0.001"))
    assert priced.marketing_credits == 200 * MICRO and priced.marketing_sources == ("t-1",)
    (usd_figures,) = priced.currencies
    assert usd_figures.marketing_expense.amount == 20  # 200 credits x $0.001 = $0.20
    assert usd_figures.recognized == 0  # an expense, not revenue
    unpriced = report(MARCH, APRIL, [], [activity])
    assert unpriced.marketing_credits == 200 * MICRO and unpriced.currencies == ()


def test_a_refund_is_negative_and_leaves_the_deferred_balance() -> None:
    lot = pack(1000, 8000)
    activity = LotActivity(lot, within={Movement.CONSUMED: 400 * MICRO, Movement.REFUNDED: 600 * MICRO})
    found = usd(report(MARCH, APRIL, [], [activity], [Refund("refund-1", "USD", 4800)]).currencies)
    assert found.refunds.amount == -4800 and found.refunds.sources == ["refund-1"]
    assert found.purchased_recognized.amount == 3200
    assert found.deferred_refunded == 4800 and found.purchased_deferred.amount == 0
    assert found.recognized == 3200 - 4800


def test_overage_is_recognized_over_its_invoice_period() -> None:
    overage = ServiceCharge(("INV-2026-000001#3", "overage:ai.tokens"), "USD", 1800, MARCH, APRIL, overage=True)
    found = usd(report(MARCH, APRIL, [overage], []).currencies)
    assert found.overage_billed.amount == 1800 and found.overage_billed.sources == [
        "INV-2026-000001#3",
        "overage:ai.tokens",
    ]
    assert found.recognized == 1800 and found.deferred_billed == 0


def test_currencies_are_reported_apart() -> None:
    euro = ServiceCharge(("eur",), "EUR", 5000, MARCH, APRIL)
    found = report(MARCH, APRIL, [plan(100), euro], [])
    assert [(item.currency, item.recognized) for item in found.currencies] == [("EUR", 5000), ("USD", 100)]


@given(
    credits=st.integers(min_value=1, max_value=10_000),
    basis=st.integers(min_value=1, max_value=10_000_000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6),
    expired=st.booleans(),
)
def test_windows_add_up_to_the_lot_basis(credits: int, basis: int, cuts: list[int], expired: bool) -> None:
    """However the lot's use is cut into windows, the recognized (and breakage) figures of the
    windows add up to exactly what the lot was sold for once it is used up."""
    lot = pack(credits, basis)
    total, moved, windows = credits * MICRO, 0, []
    for cut in cuts:
        step = min(cut * MICRO // 3 + 1, total - moved)
        windows.append(step)
        moved += step
    windows.append(total - moved)
    recognized, start = 0, MARCH
    before = 0
    for index, step in enumerate(windows):
        end = start + timedelta(days=1)
        movement = Movement.EXPIRED if expired and index == len(windows) - 1 else Movement.CONSUMED
        found = report(start, end, [], [LotActivity(lot, before=before, within={movement: step} if step else {})])
        for item in found.currencies:
            assert item.rolls_forward()
            recognized += item.purchased_recognized.amount + item.breakage.amount
        before += step
        start = end
    assert recognized == basis


def test_an_unused_lot_is_wholly_deferred() -> None:
    lot = pack(10, 999)
    found = usd(report(APRIL, MAY, [], [LotActivity(lot)]).currencies)
    assert found.deferred_opening == 999 and found.purchased_deferred.amount == 999 and found.recognized == 0
    assert found.purchased_deferred.sources == ["pi_1"]


# --- the report through GraphQL, from the ledger's postings -----------------------------------

REPORT = """
query($org: ID, $start: DateTime!, $end: DateTime!) {
  revenueReport(organizationId: $org, periodStart: $start, periodEnd: $end) {
    organizationId marketingCredits marketingSources
    currencies { currency
      recognized { value } deferredOpening { value } deferredBilled { value } deferredRecognized { value }
      deferredRefunded { value } deferredClosing { value }
      purchasedRecognized { money { value minorUnits currency formatted } credits sources sourcesTruncated }
      breakage { money { value } credits sources } purchasedDeferred { money { value } credits sources }
      subscriptionRecognized { money { value } } subscriptionDeferred { money { value } }
      refunds { money { value } } overageBilled { money { value } }
      marketingExpense { money { value } credits sources } }
  }
}
"""


async def _usage_before_expiry(service: Service, margin_s: float) -> dict[str, Any] | None:
    """A new organization with a paid lot expiring `margin_s` after its grant, an immediate lot, a
    bonus lot and two usages, all made before the paid lot's end (None, nothing to use, when the
    machine was too slow for that margin: the caller tries again with a wider one)."""
    ledger = await Ledger.create(service, "Revenue Co")
    expires = datetime.now(UTC) + timedelta(seconds=margin_s)

    def in_time() -> bool:  # a usage takes well under a second; leave it one
        return datetime.now(UTC) < expires - timedelta(seconds=1)

    paid = await ledger.accepted(
        "grantCredits", amount="1000", kind="PURCHASED", source="PAYMENT", pricePerCredit="0.08", currency="USD",
        expiresAt=expires.isoformat(), refundable=True,
    )  # fmt: skip
    immediate = await ledger.accepted(
        "grantCredits", amount="10", kind="PURCHASED", pricePerCredit="0.5", currency="USD",
        revenueTreatment="IMMEDIATE",
    )  # fmt: skip
    await ledger.accepted("grantCredits", amount="100", kind="BONUS", source="PROMOTION")
    if not in_time():
        return None
    first = await ledger.accepted("recordUsage", product="ai.assistant", quantity="150")  # 100 bonus, 50 paid
    if not in_time():
        return None
    second = await ledger.accepted("recordUsage", product="ai.assistant", quantity="200")  # 200 paid
    return {"ledger": ledger, "expires": expires, "paid": paid, "immediate": immediate, "first": first,
            "second": second}  # fmt: skip


async def test_the_report_traces_each_figure_to_the_postings(service: Service, pool: asyncpg.Pool) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    # The paid lot must expire soon (the test waits for it) but only after the usages: a busy
    # machine gets a wider margin and a fresh organization rather than a wrong figure.
    for margin_s in (3.0, 8.0, 20.0):
        made = await _usage_before_expiry(service, margin_s)
        if made is not None:
            break
    assert made is not None, "the usages never came before the lot's expiry"
    ledger, expires, paid, immediate = made["ledger"], made["expires"], made["paid"], made["immediate"]
    first, second = made["first"], made["second"]
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    expiry = await ledger.accepted("expireCredits")
    end = datetime.now(UTC) + timedelta(minutes=5)

    body = await service.graphql(REPORT, org=ledger.org, start=start.isoformat(), end=end.isoformat())
    assert "errors" not in body, body
    found = body["data"]["revenueReport"]
    (usd_figures,) = found["currencies"]
    # 250 deferred credits consumed at $0.08 = $20, and the immediate lot's $5 at its grant.
    assert usd_figures["purchasedRecognized"]["money"] == {
        "value": "25.00", "minorUnits": "2500", "currency": "USD", "formatted": "$25.00",
    }  # fmt: skip
    assert usd_figures["purchasedRecognized"]["sourcesTruncated"] is False
    assert usd_figures["purchasedRecognized"]["credits"] == "260"
    assert set(usd_figures["purchasedRecognized"]["sources"]) == {
        first["transactionId"],
        second["transactionId"],
        immediate["transactionId"],
    }
    # 750 credits expired unused at $0.08 = $60 of breakage, traced to the expiry's transaction.
    assert usd_figures["breakage"] == {
        "money": {"value": "60.00"},
        "credits": "750",
        "sources": [expiry["transactionId"]],
    }
    assert usd_figures["purchasedDeferred"]["money"]["value"] == "0.00"
    assert usd_figures["recognized"]["value"] == "85.00"
    roll = [usd_figures[name]["value"] for name in ("deferredBilled", "deferredRecognized", "deferredClosing")]
    assert roll == ["80.00", "20.00", "0.00"]
    # 100 bonus credits consumed: marketing, at the catalog's $0.001 a credit.
    assert found["marketingCredits"] == "100" and found["marketingSources"] == [first["transactionId"]]
    marketing = {"money": {"value": "0.10"}, "credits": "100", "sources": [first["transactionId"]]}
    assert usd_figures["marketingExpense"] == marketing

    # Before the expiry, the same lot's unused credits were deferred.
    before = await service.graphql(REPORT, org=ledger.org, start=start.isoformat(), end=expires.isoformat())
    (early,) = before["data"]["revenueReport"]["currencies"]
    deferred = {"money": {"value": "60.00"}, "credits": "750", "sources": [paid["transactionId"]]}
    assert early["purchasedDeferred"] == deferred
    assert early["breakage"]["money"]["value"] == "0.00"


async def test_who_may_read_the_report(service: Service, pool: asyncpg.Pool) -> None:
    ledger = await Ledger.create(service, "Mine")
    other = await Ledger.create(service, "Other")
    _, billing = await create_api_key(
        pool, name="b", scope="organization", organization_id=UUID(ledger.org), role=Role.BILLING
    )
    _, viewer = await create_api_key(
        pool, name="v", scope="organization", organization_id=UUID(ledger.org), role=Role.VIEWER
    )
    window = {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"}

    async def code(credentials: str, org: str | None, **changes: str) -> str | None:
        body = await service.graphql(REPORT, credentials=credentials, org=org, **{**window, **changes})
        return body["errors"][0]["extensions"]["code"] if body.get("errors") else None

    assert await code(billing, ledger.org) is None
    assert await code(service.admin_key, None) is None  # the whole platform: the admin
    assert await code(viewer, ledger.org) == "FORBIDDEN"
    assert await code(billing, other.org) == "FORBIDDEN"
    assert await code(billing, None) == "FORBIDDEN"
    assert await code(billing, ledger.org, end="2026-02-01T00:00:00Z") == "INVALID_INPUT"
    assert await code(billing, ledger.org, end="2027-06-01T00:00:00Z") == "INVALID_INPUT"
    assert await code(billing, ledger.org, start="2026-03-01T00:00:00") == "INVALID_INPUT"
