"""The facts billing sets on the actor, judged in the pure core: a plan's access (status and
products) before any new spending, the storage gauge and its built-in alert, the revocation of a
period's subscription credits, and prices by the catalog's version at the event's time and
dimensions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from ledger.billing import catalog as billing
from ledger.core.access import storage_alert_id
from ledger.core.charge import Spender
from ledger.core.commands import (
    AccessStatus,
    AlertKind,
    CaptureHold,
    Expire,
    GrantCredits,
    IssueQuote,
    LotKind,
    LotSource,
    LotTerms,
    PlaceHold,
    ReleaseHold,
    RevokeCredits,
    SetAccess,
    SetRate,
    SetStorageUsage,
)
from ledger.core.entries import AlertState
from ledger.core.spending import estimate
from ledger.core.state import OrgState, Rate, rate_in_force
from tests.test_core_credit_model import DAY, HOUR, ORG, T0, credits, grant, legs, lot_moves, ok, org, refused, usage

ARCHIVE = SetAccess(AccessStatus.INACTIVE, "act3-archive")
SEATSCO = SetAccess(AccessStatus.ACTIVE, "seatsco-team", frozenset({"sms"}))


def funded() -> OrgState:
    state, _ = grant(org(), 100)
    return state


# --- access ----------------------------------------------------------------------------------------


def test_without_a_subscription_everything_is_allowed() -> None:
    state = funded()
    assert state.access.status is AccessStatus.ACTIVE and state.access.products is None
    assert ok(state, usage(1)).result.credits_charged == credits(1)
    ok(state, PlaceHold(credits(1), T0 + HOUR))
    ok(state, IssueQuote("tokens", Decimal(1), T0 + HOUR))


@pytest.mark.parametrize(
    ("access", "code"),
    [(ARCHIVE, "PLAN_INACTIVE"), (SetAccess(AccessStatus.TRIAL_ENDED, "act3-starter"), "TRIAL_ENDED")],
)
def test_an_inactive_plan_refuses_new_spending_and_nothing_else(access: SetAccess, code: str) -> None:
    state = funded()
    held = ok(state, PlaceHold(credits(5), T0 + DAY, product="sms"))
    (hold_id,) = held.state.holds
    closed = ok(held.state, access, T0 + HOUR).state
    later = T0 + 2 * HOUR
    step = refused(closed, usage(1), code, later)
    if code == "PLAN_INACTIVE":
        assert step.result.message == "the plan act3-archive allows no usage; reads and history still work"
    refused(closed, PlaceHold(credits(1), T0 + DAY), code, later)
    refused(closed, IssueQuote("sms", Decimal(1), T0 + DAY), code, later)
    # Credits still arrive, expire and come back; the hold placed before is captured (its work was authorized).
    ok(closed, GrantCredits(credits(1)), later)
    ok(closed, Expire(later), later)
    ok(closed, ReleaseHold(hold_id), later)
    captured = ok(closed, CaptureHold(hold_id, quantity=Decimal(3), final=True), later)
    assert captured.result.credits_charged == credits(3)
    answer = estimate(closed, Spender(later, "sms"), Decimal(1))
    assert (answer.affordable, answer.code) == (False, code)
    # Active again (a paid plan): usage works at once.
    assert ok(ok(closed, SetAccess(AccessStatus.ACTIVE, "act3-creator"), later).state, usage(1), later)


def test_a_plan_with_products_refuses_the_others() -> None:
    state = ok(funded(), SEATSCO).state
    assert ok(state, usage(2)).result.credits_charged == credits(2)
    step = refused(state, usage(1, "tokens"), "PRODUCT_NOT_IN_PLAN")
    assert (
        step.result.message
        == "the plan seatsco-team does not include product 'tokens': its usage is for its products only"
    )
    refused(state, IssueQuote("tokens", Decimal(1), T0 + HOUR), "PRODUCT_NOT_IN_PLAN")
    ok(state, PlaceHold(credits(1), T0 + HOUR, product="sms"))
    refused(state, PlaceHold(credits(1), T0 + HOUR, product="tokens"), "PRODUCT_NOT_IN_PLAN")
    refused(state, PlaceHold(credits(1), T0 + HOUR), "PRODUCT_NOT_IN_PLAN")  # a hold with no product names none
    assert estimate(state, Spender(T0, "tokens"), Decimal(1)).code == "PRODUCT_NOT_IN_PLAN"


def test_access_is_kept_whole_and_replaced_whole() -> None:
    access = SetAccess(AccessStatus.ACTIVE, "act3-studio", None, Decimal(500), priority_queue=True)
    state = ok(ok(org(), SEATSCO).state, access).state
    assert (state.access.plan, state.access.products, state.access.storage_quota_gb) == ("act3-studio", None, 500)
    assert state.access.priority_queue
    assert ok(state, access).postings == ()


# --- storage ---------------------------------------------------------------------------------------


def _events(
    state: OrgState, payload: SetAccess | SetStorageUsage
) -> tuple[OrgState, list[tuple[AlertState, int, int]]]:
    step = ok(state, payload)
    for event in step.alert_events:
        assert (event.alert_id, event.kind, event.name) == (
            storage_alert_id(ORG),
            AlertKind.STORAGE_OVER_QUOTA,
            "storage over quota",
        )
    return step.state, [(e.state, e.threshold, e.value) for e in step.alert_events]


def test_storage_over_the_quota_fires_once_per_crossing_and_resolves() -> None:
    micro = 1_000_000
    state, fired = _events(org(), SetStorageUsage(Decimal(50)))
    assert fired == [] and state.storage_used_gb == 50  # no quota: never over
    state, fired = _events(state, SetAccess(AccessStatus.ACTIVE, "act3-starter", storage_quota_gb=Decimal(10)))
    assert fired == [(AlertState.TRIGGERED, 10 * micro, 50 * micro)]  # a lower quota is a crossing too
    state, fired = _events(state, SetStorageUsage(Decimal("10.5")))
    assert fired == []  # still over: no second event
    state, fired = _events(state, SetStorageUsage(Decimal(10)))
    assert fired == [(AlertState.RESOLVED, 10 * micro, 10 * micro)]  # at the quota is within it
    state, fired = _events(state, SetStorageUsage(Decimal("10.000001")))
    assert fired == [(AlertState.TRIGGERED, 10 * micro, 10 * micro + 1)]
    state, fired = _events(state, SetAccess(AccessStatus.ACTIVE, "act3-creator", storage_quota_gb=None))
    assert fired == [(AlertState.RESOLVED, 10 * micro, 10 * micro + 1)]  # lifted: names the quota it was over
    step = ok(state, SetStorageUsage(Decimal(7)))
    assert step.result.details == {"used_gb": "7", "over_quota": "false"} and step.postings == ()


def test_the_storage_alert_is_one_per_organization_and_its_events_ids_differ() -> None:
    state = ok(org(), SetAccess(AccessStatus.ACTIVE, "p", storage_quota_gb=Decimal(1))).state
    over = ok(state, SetStorageUsage(Decimal(2)))
    under = ok(over.state, SetStorageUsage(Decimal(0)))
    assert over.alert_events[0].alert_id == under.alert_events[0].alert_id == storage_alert_id(ORG)
    assert over.alert_events[0].id != under.alert_events[0].id
    assert over.result.details == {"used_gb": "2", "quota_gb": "1", "over_quota": "true"}


# --- revocation ------------------------------------------------------------------------------------

PERIOD_END = T0 + 30 * DAY
SUBSCRIPTION = LotTerms(LotSource.SUBSCRIPTION)


def test_revocation_takes_only_that_periods_subscription_credits_in_consumption_order() -> None:
    state, base = grant(org(), 40, LotKind.BASE, expires_at=PERIOD_END, terms=SUBSCRIPTION)
    state, seat = grant(state, 30, LotKind.SEAT, priority=100, expires_at=PERIOD_END, terms=SUBSCRIPTION)
    state, bought = grant(state, 50, LotKind.PURCHASED, expires_at=PERIOD_END)  # paid for: never revoked
    state, next_period = grant(state, 50, LotKind.BASE, expires_at=PERIOD_END + 30 * DAY, terms=SUBSCRIPTION)
    step = ok(state, RevokeCredits(credits(50), PERIOD_END, "seats 5 -> 4"))
    assert lot_moves(step) == {seat: -credits(30), base: -credits(20)}
    assert legs(step) == [("revocation", credits(50))]
    assert step.result.details == {"revoked": "50", "requested": "50"}
    assert bought not in lot_moves(step) and next_period not in lot_moves(step)


def test_revocation_never_fails_for_want_of_credits_and_leaves_holds_their_fences() -> None:
    state, base = grant(org(), 40, LotKind.BASE, expires_at=PERIOD_END, terms=SUBSCRIPTION)
    state = ok(state, PlaceHold(credits(15), T0 + HOUR)).state
    step = ok(state, RevokeCredits(credits(100), PERIOD_END))
    assert lot_moves(step) == {base: -credits(25)}  # the hold keeps its 15
    assert step.result.details == {"revoked": "25", "requested": "100"}
    nothing = ok(step.state, RevokeCredits(credits(1), PERIOD_END))
    assert nothing.postings == () and nothing.result.details["revoked"] == "0"


# --- prices by version and dimensions --------------------------------------------------------------

V1 = Rate("ai.tokens", Decimal(1), effective_at=T0)
V2 = Rate("ai.tokens", Decimal(2), effective_at=T0 + DAY)
BIG = Rate("ai.tokens", Decimal(5), effective_at=T0, dimensions={"model": "big"})
BIG_INPUT = Rate("ai.tokens", Decimal(7), effective_at=T0 + 2 * DAY, dimensions={"model": "big", "op": "input"})


def priced() -> OrgState:
    state, _ = grant(org(), 1000)
    return replace(state, rate_card={**state.rate_card, "ai.tokens": (V1, BIG, V2, BIG_INPUT)})


def charged(state: OrgState, at: datetime, occurred_at: datetime | None = None, **dimensions: str) -> int:
    event = usage(1, "ai.tokens", occurred_at=occurred_at, dimensions=dimensions)
    return ok(state, event, at).result.credits_charged // 1_000_000


def test_usage_is_priced_by_the_version_in_force_at_the_events_time() -> None:
    state = priced()
    assert charged(state, T0 + HOUR) == 1
    assert charged(state, T0 + 2 * DAY) == 2
    assert charged(state, T0 + 2 * DAY, occurred_at=T0 + HOUR) == 1  # late: the version of its time
    refused(state, usage(1, "ai.tokens", occurred_at=T0 - HOUR), "UNKNOWN_PRODUCT", T0 + HOUR)  # before the first


def test_the_most_specific_version_the_event_carries_wins() -> None:
    state = priced()
    assert charged(state, T0 + DAY, model="big") == 5
    assert charged(state, T0 + DAY, model="small") == 2  # no version for it: the dimensionless one
    assert charged(state, T0 + DAY, model="big", op="input") == 5  # {big, input} is not in force yet
    assert charged(state, T0 + 3 * DAY, model="big", op="input") == 7
    assert charged(state, T0 + 3 * DAY, op="input") == 2  # carries only part of {big, input}


def test_the_orgs_own_rate_wins_and_holds_and_quotes_price_without_dimensions() -> None:
    state = priced()
    own = ok(state, SetRate("ai.tokens", T0 + 2 * DAY, Decimal(3))).state
    assert charged(own, T0 + 3 * DAY, model="big") == 3
    assert charged(own, T0 + DAY, model="big") == 5  # before the org's version
    held = ok(state, PlaceHold(credits(100), T0 + 2 * DAY, product="ai.tokens"), T0 + DAY)
    (hold_id,) = held.state.holds
    assert ok(held.state, CaptureHold(hold_id, quantity=Decimal(1)), T0 + DAY).result.credits_charged == credits(2)
    quote = ok(state, IssueQuote("ai.tokens", Decimal(1), T0 + 2 * DAY), T0 + HOUR)
    assert quote.result.details["credits"] == "1"


def test_billing_chooses_versions_by_the_same_rule() -> None:
    versions = (
        billing.RateVersion("ai.tokens", T0, Decimal(1)),
        billing.RateVersion("ai.tokens", T0, Decimal(5), {"model": "big"}),
        billing.RateVersion("ai.tokens", T0 + DAY, Decimal(2)),
    )
    for at, dimensions in [(T0, {}), (T0 + DAY, {"model": "big"}), (T0 + DAY, {"model": "x"}), (T0 - DAY, {})]:
        assert billing.rate_in_force(versions, at, dimensions) is rate_in_force(versions, at, dimensions)
    assert billing.rate_in_force(versions, T0 + DAY, {"model": "big"}) == versions[1]
    assert rate_in_force((), T0, {}) is None
