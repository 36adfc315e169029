"""Every value that enters is bounded: at and beyond each bound, through the API, a value is either
refused up front (INVALID_INPUT, nothing queued) or applied and stored exactly; a valid command whose
result would leave the range is an OUT_OF_RANGE rejection, recorded like any other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import bounds
from ledger.core.errors import InvalidCommand
from ledger.core.money import format_credits, parse_credits
from tests.conftest import Service
from tests.ledger_api import Ledger

MAX = "1000000000000"
GRANT = """mutation($o: ID!, $a: Credits!, $k: String!) {
  grantCredits(input: {organizationId: $o, amount: $a, idempotencyKey: $k}) { status balanceAfter } }"""


async def _grant_error(service: Service, org: Ledger, amount: object) -> str | None:
    body = await service.graphql(GRANT, o=org.org, a=amount, k=f"grant-{amount!r}")
    if "errors" in body:
        return str(body["errors"][0]["extensions"]["code"])
    return None


@pytest.mark.parametrize(
    "amount",
    [
        "1" + "0" * 30, "1000000000000.000001", "1000000000001", "0.0000001", "1." + "0" * 70 + "1",
        "\u0661\u0662\u0663", "\uff11\uff12", "1_000", "+5", " 5 ", "5.", ".5", "1e3", "NaN", 5, 5.5, None,
    ],
)  # fmt: skip
async def test_amounts_out_of_range_or_grammar_are_refused_up_front(service: Service, amount: object) -> None:
    org = await Ledger.create(service, "bounds")
    assert await _grant_error(service, org, amount) in {"INVALID_INPUT", "GRAPHQL_VALIDATION_FAILED"}
    assert (await org.balance())["total"] == "0"


async def test_the_largest_amount_is_stored_exactly_and_a_sum_past_it_is_out_of_range(service: Service) -> None:
    org = await Ledger.create(service, "bounds at the edge")
    assert (await org.accepted("grantCredits", amount=MAX))["balanceAfter"] == MAX
    rejected = await org.rejected("grantCredits", "OUT_OF_RANGE", amount="0.000001")
    assert rejected["balanceAfter"] == MAX
    assert (await org.balance())["total"] == MAX
    # A retry of the rejection answers the same, from the journal.
    again = await org.rejected("grantCredits", "OUT_OF_RANGE", amount="0.000001", idempotencyKey="past-the-top")
    retried = await org.rejected("grantCredits", "OUT_OF_RANGE", amount="0.000001", idempotencyKey="past-the-top")
    assert {**retried, "commandId": None} == {**again, "commandId": None}  # each request has its own command id


async def test_usage_under_overage_cannot_push_a_spend_past_the_range(service: Service) -> None:
    org = await Ledger.create(service, "overage at the edge")
    await org.accepted("setSpendingPolicy", atZero="OVERAGE")
    await org.accepted("setAlert", kind="HIGH_SPEND", threshold=MAX, idempotencyKey="spend-alert")
    # sms.message costs 1 credit per message: a trillion messages is the most one event may cost.
    await org.accepted("recordUsage", product="sms.message", quantity=MAX)
    await org.rejected("recordUsage", "OUT_OF_RANGE", product="sms.message", quantity="1")
    body = await service.graphql(
        """mutation($o: ID!) { recordUsage(input: {organizationId: $o, product: "sms.message",
             quantity: "1000000000001", idempotencyKey: "too-dear"}) { status } }""",
        o=org.org,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"  # priced past the range: never queued


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime.now(UTC) + timedelta(days=2),
        datetime(2031, 1, 1, tzinfo=UTC),
        datetime.now(UTC) - timedelta(days=400),
        "9999-12-31T00:00:00+00:00",
        "0001-01-01T00:00:00+00:00",
    ],
)
async def test_usage_dated_outside_its_window_is_refused(service: Service, occurred_at: object) -> None:
    org = await Ledger.create(service, "times")
    await org.accepted("grantCredits", amount="10")
    when = occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at
    body = await service.graphql(
        """mutation($o: ID!, $t: DateTime!) { recordUsage(input: {organizationId: $o, product: "sms.message",
             quantity: "1", occurredAt: $t, idempotencyKey: "dated"}) { status } }""",
        o=org.org,
        t=when,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert (await org.balance())["total"] == "10"


@given(st.integers(min_value=-bounds.CREDITS_MAX - 10**7, max_value=bounds.CREDITS_MAX + 10**7))
def test_credits_parse_exactly_inside_the_range_and_are_refused_outside(micro: int) -> None:
    text = format_credits(micro)
    if abs(micro) <= bounds.CREDITS_MAX:
        assert parse_credits(text) == micro
    else:
        with pytest.raises(InvalidCommand):
            parse_credits(text)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=14, min_value=0, max_value=10**16))
def test_quantities_are_exact_or_refused(quantity: Decimal) -> None:
    text = format(quantity, "f")
    try:
        parsed = bounds.parse_decimal(text)
        bounds.check_decimal(parsed, "quantity", bounds.QUANTITY_MAX)
    except InvalidCommand:
        normalized = quantity.normalize()
        assert quantity > bounds.QUANTITY_MAX or -normalized.as_tuple().exponent > bounds.QUANTITY_DECIMALS_MAX  # type: ignore[operator]
    else:
        assert parsed == quantity


async def test_a_hold_past_its_ttl_shows_expired_before_the_sweep(service: Service) -> None:
    org = await Ledger.create(service, "lapsed hold")
    await org.accepted("grantCredits", amount="10")
    expires = datetime.now(UTC) + timedelta(seconds=1)
    await org.accepted("placeHold", amount="4", expiresAt=expires)
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    holds = await org.read("holds(includeClosed: true) { status reserved }")
    assert holds["holds"] == [{"status": "expired", "reserved": "0"}]
    assert (await org.balance())["available"] == "10"


def test_times_have_offsets_postgresql_can_read_back() -> None:
    """timestamptz reads whole-minute offsets up to 15:59 either way; a journaled time with any
    other could never be cast again (verify and the debit feed would fail on its row)."""
    at = datetime(2026, 6, 1, 12, 0)
    for hours, minutes in ((15, 59), (-15, -59), (5, 30), (0, 0), (-3, 0)):
        bounds.check_time(at.replace(tzinfo=timezone(timedelta(hours=hours, minutes=minutes))), "t")
    for offset in (timedelta(hours=16), timedelta(hours=-23, minutes=-59), timedelta(hours=-3, seconds=-30),
                   timedelta(minutes=1, microseconds=1)):  # fmt: skip
        with pytest.raises(InvalidCommand, match="offset"):
            bounds.check_time(at.replace(tzinfo=timezone(offset)), "t")
