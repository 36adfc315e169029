"""Alerts: thresholds on available credits and on spend per period, judged by the actor.

An alert lives in the organization's state, set and removed by commands like any spending rule,
and is judged after every command that changes anything: when its condition starts to hold it
fires TRIGGERED, when it stops holding (a top-up, a released hold, a new period) RESOLVED. So an
alert fires once per crossing, the event is journaled with the command that caused it (exactly
once, never from a retry), and a new or replaced alert whose condition already holds fires at once.

    LOW_BALANCE   the org's available credits (or, with a team, the team's own) <= threshold
    HIGH_SPEND    what the org, a team or a user spent in the current period     >= threshold
    AUTO_RECHARGE as LOW_BALANCE, for the org; set by billing (`setAutoRecharge`) under the id
                  `auto_recharge_alert_id`: its TRIGGERED event starts one recharge, and it re-arms
                  (RESOLVED) when a payment lifts the balance above the threshold

Spend alerts count on counters of their own (`alert:<counter>`, per period) from the moment they
are set, as budgets and caps do (a replaced alert counts afresh); a credit-back lowers them again,
those set by the time of the debit it reverses. A triggered alert that is replaced or removed fires
RESOLVED first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from ledger import constants
from ledger.core.change import Change
from ledger.core.commands import AlertKind, Command, RemoveAlert, SetAlert
from ledger.core.entries import AlertEvent, AlertState, Applied
from ledger.core.errors import InvalidCommand, LimitReached, NotFound
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits
from ledger.core.state import Alert, OrgState, SpendKey, alert_scope, period_start, require_team

# Kinds that watch the available balance from above: they fire when it falls to the threshold.
_BELOW = frozenset({AlertKind.LOW_BALANCE, AlertKind.AUTO_RECHARGE})


def auto_recharge_alert_id(organization_id: UUID) -> UUID:
    """The one auto-recharge rule an organization may have: its id is derived, never chosen."""
    return derived_id(Namespace.BUILT_IN_ALERTS, organization_id, AlertKind.AUTO_RECHARGE.value)


def set_alert(state: OrgState, command: Command, request: SetAlert) -> Applied:
    require_team(state, request.team_id)
    if request.kind is AlertKind.AUTO_RECHARGE and request.alert_id != auto_recharge_alert_id(command.organization_id):
        raise InvalidCommand("AUTO_RECHARGE is set with setAutoRecharge, which names its rule")
    if request.alert_id not in state.alerts and len(state.alerts) >= constants.alerts_per_organization_max:
        raise LimitReached(f"an organization has at most {constants.alerts_per_organization_max} alerts")
    alert = Alert(
        id=request.alert_id,
        kind=request.kind,
        threshold=request.threshold,
        counter_id=command.envelope.command_id,
        set_at=command.at,
        name=request.name,
        team_id=request.team_id,
        user_id=request.user_id,
        period=request.period,
    )
    change = Change(state)
    change.replace_state(alerts={**state.alerts, alert.id: alert})
    applied = change.applied(command.at, details={"alert_id": str(alert.id)})
    return _resolve_replaced(applied, state.alerts.get(alert.id), state, command)


def remove_alert(state: OrgState, command: Command, request: RemoveAlert) -> Applied:
    if request.alert_id not in state.alerts:
        raise NotFound(f"no alert {request.alert_id}")
    change = Change(state)
    change.replace_state(alerts={i: a for i, a in state.alerts.items() if i != request.alert_id})
    applied = change.applied(command.at, details={"alert_id": str(request.alert_id)})
    return _resolve_replaced(applied, state.alerts[request.alert_id], state, command)


def _resolve_replaced(applied: Applied, old: Alert | None, state: OrgState, command: Command) -> Applied:
    """A triggered alert that is replaced or removed ends with RESOLVED, so a reader of the events
    never sees it triggered for ever (a replacement is then judged afresh)."""
    if old is None or not old.triggered:
        return applied
    event = _event(old, AlertState.RESOLVED, measure(state, old, command.at), command)
    return replace(applied, alert_events=(*applied.alert_events, event))


def judge(applied: Applied, command: Command) -> Applied:
    """Judge every alert on the state a command left; fire those whose condition changed."""
    state, at = applied.state, command.at
    changed: dict[UUID, Alert] = {}
    events: list[AlertEvent] = []
    for alert in state.alerts.values():
        value = measure(state, alert, at)
        holds = value <= alert.threshold if alert.kind in _BELOW else value >= alert.threshold
        if holds == alert.triggered:
            continue
        changed[alert.id] = replace(alert, triggered=holds)
        events.append(_event(alert, AlertState.TRIGGERED if holds else AlertState.RESOLVED, value, command))
    if not changed:
        return applied
    return replace(
        applied,
        state=replace(state, alerts={**state.alerts, **changed}),
        alert_events=(*applied.alert_events, *events),
    )


def _event(alert: Alert, crossing: AlertState, value: MicroCredits, command: Command) -> AlertEvent:
    # One command may resolve an alert's old definition and trigger its new one: the state is in the id.
    return AlertEvent(
        id=derived_id(Namespace.ALERT_EVENTS, command.envelope.command_id, alert.id, crossing.value),
        alert_id=alert.id,
        transaction_id=command.envelope.command_id,
        state=crossing,
        kind=alert.kind,
        name=alert.name,
        threshold=alert.threshold,
        value=value,
        at=command.at,
        team_id=alert.team_id,
        user_id=alert.user_id,
    )


def measure(state: OrgState, alert: Alert, at: datetime) -> MicroCredits:
    """What the alert compares with its threshold, at `at`."""
    if alert.kind in _BELOW:
        return state.balance(at, alert.team_id).available
    return state.spend.get(_counter(alert, at), MicroCredits(0))


def spend_counters(
    state: OrgState, at: datetime, team_id: UUID | None, user_id: str | None, counted_since: datetime | None = None
) -> Iterator[SpendKey]:
    """The spend alerts' counters a debit by this team and user, at `at`, counts on; with
    `counted_since` (a debit's time, for its credit-back) only alerts set by then, so a credit-back
    takes nothing off an alert that never counted the debit."""
    for alert in state.alerts.values():
        if alert.kind is not AlertKind.HIGH_SPEND:
            continue
        if counted_since is not None and alert.set_at > counted_since:
            continue
        if alert.team_id is not None and alert.team_id != team_id:
            continue
        if alert.user_id is not None and alert.user_id != user_id:
            continue
        yield _counter(alert, at)


def _counter(alert: Alert, at: datetime) -> SpendKey:
    return (alert_scope(alert.counter_id), period_start(at, alert.period))
