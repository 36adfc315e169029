"""What payments set on the actor, judged in the pure core: suspension (dunning) refuses new spending
and nothing else, survives a plan change and lifts at once; billing's alert events are journaled
with their command; the auto-recharge rule fires once per crossing and re-arms when a payment lifts
the balance."""

from __future__ import annotations

from decimal import Decimal

from ledger.core.alerts import auto_recharge_alert_id
from ledger.core.billing_alerts import billing_alert_id
from ledger.core.commands import (
    AccessStatus,
    AlertKind,
    GrantCredits,
    IssueQuote,
    PlaceHold,
    RaiseBillingAlert,
    SetAccess,
    SetAlert,
    SetSuspension,
)
from ledger.core.entries import AlertState
from tests.test_core_credit_model import DAY, HOUR, ORG, T0, credits, grant, ok, org, refused, usage


def test_suspension_refuses_new_spending_survives_a_plan_change_and_lifts_at_once() -> None:
    state, _ = grant(org(), 100)
    suspended = ok(state, SetSuspension(True, "INV-2026-000007")).state
    step = refused(suspended, usage(1), "SUSPENDED")
    assert step.result.message == (
        "the organization is suspended for an unpaid invoice (INV-2026-000007); pay it to restore usage"
    )
    refused(suspended, PlaceHold(credits(1), T0 + DAY), "SUSPENDED")
    refused(suspended, IssueQuote("sms", Decimal(1), T0 + DAY), "SUSPENDED")
    # Data is kept and credits still arrive; a plan change does not lift the suspension.
    still = ok(ok(suspended, GrantCredits(credits(5))).state, SetAccess(AccessStatus.ACTIVE, "act3-studio")).state
    assert still.access.suspended and still.access.plan == "act3-studio"
    refused(still, usage(1), "SUSPENDED")
    restored = ok(still, SetSuspension(False)).state
    assert not restored.access.suspended and restored.access.suspended_reason == ""
    assert ok(restored, usage(1)).result.credits_charged == credits(1)


def test_a_billing_alert_is_an_event_of_its_command_and_changes_no_credits() -> None:
    state, _ = grant(org(), 10)
    step = ok(state, RaiseBillingAlert(AlertKind.PAYMENT_FAILED, "payment failed: card_declined", value=1150))
    (event,) = step.alert_events
    assert (event.kind, event.state, event.value, event.alert_id) == (
        AlertKind.PAYMENT_FAILED,
        AlertState.TRIGGERED,
        1150,
        billing_alert_id(ORG, AlertKind.PAYMENT_FAILED),
    )
    assert step.postings == () and step.state.lots == state.lots


def test_billing_kinds_are_never_rules_and_auto_recharge_has_one_id() -> None:
    state = org()
    refused(state, SetAlert(auto_recharge_alert_id(ORG), AlertKind.RENEWAL_NOTICE, credits(1)), "INVALID_INPUT")
    other = billing_alert_id(ORG, AlertKind.PAYMENT_FAILED)
    step = refused(state, SetAlert(other, AlertKind.AUTO_RECHARGE, credits(1)), "INVALID_INPUT")
    assert "setAutoRecharge" in step.result.message
    refused(state, RaiseBillingAlert(AlertKind.LOW_BALANCE, "no"), "INVALID_INPUT")


def test_auto_recharge_fires_once_per_crossing_and_rearms_on_a_top_up() -> None:
    state, _ = grant(org(), 100)
    rule = SetAlert(auto_recharge_alert_id(ORG), AlertKind.AUTO_RECHARGE, credits(50), name="auto-recharge")
    state = ok(state, rule).state
    fired = []
    for _ in range(8):  # 100 -> 36: crosses 50 once, on the 7th debit
        step = ok(state, usage(8))
        fired += [e.state for e in step.alert_events]
        state = step.state
    assert fired == [AlertState.TRIGGERED]
    topped = ok(state, GrantCredits(credits(100)), T0 + HOUR)
    assert [e.state for e in topped.alert_events] == [AlertState.RESOLVED]
    again = ok(topped.state, usage(100), T0 + HOUR)
    assert [e.state for e in again.alert_events] == [AlertState.TRIGGERED]
