"""Alerts in the pure core: low balance and high spend, judged after every accepted command, firing
once per crossing (seed 003: an alert at 10 credits left, one when depleted, one when user_1234
spends more than 1,000 credits in the billing period)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from ledger.constants import alerts_per_organization_max
from ledger.core.batch import apply_batch
from ledger.core.commands import (
    AlertKind,
    CreditBack,
    GrantCredits,
    LotKind,
    Period,
    PlaceHold,
    ReleaseHold,
    RemoveAlert,
    SetAlert,
    TransferCredits,
)
from ledger.core.entries import AlertState, Applied
from ledger.core.state import OrgState, alert_scope
from tests.test_core_credit_model import (
    DAY,
    FEB,
    HOUR,
    ORG,
    T0,
    TEAM,
    command,
    credits,
    debit_of,
    grant,
    ok,
    org,
    refused,
    send,
    usage,
)

LOW, DEPLETED, SPEND = (uuid.UUID(int=n) for n in (1, 2, 3))


def fired(step: Applied) -> list[tuple[uuid.UUID, AlertState, int]]:
    return [(e.alert_id, e.state, e.value) for e in step.alert_events]


def seats_co() -> OrgState:
    """400 pooled seat credits, with "almost out" at 10 and "depleted" at 0."""
    state, _ = grant(org(), 400, LotKind.SEAT)
    state = ok(state, SetAlert(LOW, AlertKind.LOW_BALANCE, credits(10), "almost out")).state
    return ok(state, SetAlert(DEPLETED, AlertKind.LOW_BALANCE, credits(0), "depleted")).state


def test_low_balance_fires_once_when_crossed_and_resolves_on_a_top_up() -> None:
    state = seats_co()
    step = ok(state, usage(300))
    assert fired(step) == []
    step = ok(step.state, usage(90))  # 10 left: at the threshold
    assert fired(step) == [(LOW, AlertState.TRIGGERED, credits(10))]
    assert step.state.alerts[LOW].triggered and not step.state.alerts[DEPLETED].triggered
    step = ok(step.state, usage(4))  # still low: no second event
    assert fired(step) == []
    step = ok(step.state, usage(6))
    assert fired(step) == [(DEPLETED, AlertState.TRIGGERED, 0)]
    refused(step.state, usage(1), "INSUFFICIENT_CREDITS")  # a rejection judges nothing
    step = ok(step.state, GrantCredits(credits(1000), LotKind.PURCHASED))  # the top-up pack
    assert sorted(fired(step)) == sorted(
        [(LOW, AlertState.RESOLVED, credits(1000)), (DEPLETED, AlertState.RESOLVED, credits(1000))]
    )
    assert not any(alert.triggered for alert in step.state.alerts.values())


def test_an_alert_whose_condition_already_holds_fires_when_set() -> None:
    state, _ = grant(org(), 5)
    step = ok(state, SetAlert(LOW, AlertKind.LOW_BALANCE, credits(10)))
    assert fired(step) == [(LOW, AlertState.TRIGGERED, credits(5))]
    assert step.result.details["alert_id"] == str(LOW)
    # Replacing it resolves the old definition and judges the new one afresh.
    again = ok(step.state, SetAlert(LOW, AlertKind.LOW_BALANCE, credits(6), "new name"))
    assert fired(again) == [(LOW, AlertState.RESOLVED, credits(5)), (LOW, AlertState.TRIGGERED, credits(5))]
    assert [e.name for e in again.alert_events] == ["", "new name"]
    assert len({e.id for e in again.alert_events}) == 2
    removed = ok(again.state, RemoveAlert(LOW))
    assert fired(removed) == [(LOW, AlertState.RESOLVED, credits(5))]


def test_held_credits_are_not_available() -> None:
    state = seats_co()
    placed = ok(state, PlaceHold(credits(395), T0 + HOUR))
    assert fired(placed) == [(LOW, AlertState.TRIGGERED, credits(5))]
    hold_id = uuid.UUID(placed.result.details["hold_id"])
    released = ok(placed.state, ReleaseHold(hold_id))
    assert fired(released) == [(LOW, AlertState.RESOLVED, credits(400))]


def test_a_team_alert_watches_only_the_teams_own_credits() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, SetAlert(LOW, AlertKind.LOW_BALANCE, credits(10), team_id=TEAM)).state
    assert state.alerts[LOW].triggered  # the team has nothing of its own yet
    step = ok(state, TransferCredits(credits(50), None, TEAM))
    assert fired(step) == [(LOW, AlertState.RESOLVED, credits(50))]
    step = ok(step.state, usage(45, team_id=TEAM))
    assert fired(step) == [(LOW, AlertState.TRIGGERED, credits(5))]
    assert fired(ok(step.state, usage(20))) == []  # the pool's spend is not the team's


def test_high_spend_counts_one_users_spend_per_period_from_when_it_is_set() -> None:
    state, _ = grant(org(), 10_000)
    state = ok(state, usage(900, user_id="user_1234")).state  # before the alert: not counted
    state = ok(state, SetAlert(SPEND, AlertKind.HIGH_SPEND, credits(1000), user_id="user_1234")).state
    step = ok(state, usage(600, user_id="user_1234"))
    assert fired(step) == []
    assert fired(ok(step.state, usage(500, user_id="someone_else"))) == []
    step = ok(step.state, usage(400, user_id="user_1234"))
    assert fired(step) == [(SPEND, AlertState.TRIGGERED, credits(1000))]
    # A new month: the first command in it finds the new period's counter at zero.
    step = send(step.state, command(usage(1, user_id="someone_else"), FEB))
    assert fired(step) == [(SPEND, AlertState.RESOLVED, 0)]
    step = send(step.state, command(usage(1000, user_id="user_1234"), FEB + DAY))
    assert fired(step) == [(SPEND, AlertState.TRIGGERED, credits(1000))]


def test_a_credit_back_lowers_a_spend_alerts_counter() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, SetAlert(SPEND, AlertKind.HIGH_SPEND, credits(30), period=Period.DAY)).state
    tx = command(usage(40))
    used = send(state, tx)
    assert fired(used) == [(SPEND, AlertState.TRIGGERED, credits(40))]
    loaded = replace(used.state, debits={tx.envelope.command_id: debit_of(tx, used)})  # as the worker loads it
    back = ok(loaded, CreditBack(tx.envelope.command_id))
    assert fired(back) == [(SPEND, AlertState.RESOLVED, 0)]


def test_a_credit_back_takes_nothing_off_an_alert_set_after_the_debit() -> None:
    state, _ = grant(org(), 10_000)
    old = command(usage(900, user_id="u"), T0)
    used = send(state, old)
    state = send(used.state, command(SetAlert(SPEND, AlertKind.HIGH_SPEND, credits(1000), user_id="u"), T0 + DAY)).state
    state = send(state, command(usage(800, user_id="u"), T0 + 2 * DAY)).state
    loaded = replace(state, debits={old.envelope.command_id: debit_of(old, used)})
    back = send(loaded, command(CreditBack(old.envelope.command_id), T0 + 3 * DAY))
    counter = (alert_scope(back.state.alerts[SPEND].counter_id), T0)  # January
    assert back.state.spend[counter] == credits(800)


def test_alerts_are_limited_and_removal_needs_an_existing_alert() -> None:
    state = org()
    for n in range(alerts_per_organization_max):
        state = ok(state, SetAlert(uuid.UUID(int=1000 + n), AlertKind.HIGH_SPEND, credits(1))).state
    refused(state, SetAlert(uuid.uuid4(), AlertKind.HIGH_SPEND, credits(1)), "LIMIT_REACHED")
    ok(state, SetAlert(uuid.UUID(int=1000), AlertKind.HIGH_SPEND, credits(2)))  # replacing is fine
    state = ok(state, RemoveAlert(uuid.UUID(int=1000))).state
    assert uuid.UUID(int=1000) not in state.alerts
    refused(state, RemoveAlert(uuid.UUID(int=1000)), "NOT_FOUND")
    refused(org(), SetAlert(LOW, AlertKind.LOW_BALANCE, credits(1), team_id=uuid.uuid4()), "NOT_FOUND")


def test_a_retry_fires_nothing_and_event_ids_derive_from_the_command() -> None:
    state, _ = grant(org(), 20)
    state = ok(state, SetAlert(LOW, AlertKind.LOW_BALANCE, credits(10))).state
    sent = command(usage(15), key="evt-1")
    outcomes, final = apply_batch({ORG: state}, [sent, sent], {})
    first, retry = outcomes
    assert first.applied is not None and fired(first.applied) == [(LOW, AlertState.TRIGGERED, credits(5))]
    assert retry.applied is None  # a replay is journaled nowhere and judges nothing
    (event,) = first.applied.alert_events
    again = send(state, sent)
    assert again.alert_events[0].id == event.id
    assert final[ORG].alerts[LOW].triggered


def test_an_event_is_timed_by_its_command() -> None:
    at = T0 + timedelta(minutes=5)
    step = send(org(), command(SetAlert(LOW, AlertKind.LOW_BALANCE, credits(1)), at))
    assert step.alert_events[0].at == at
