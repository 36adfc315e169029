"""The pure step of an organization's actor: `apply(state, command) -> Applied`.

Deterministic: ids of new lots, holds and quotes derive from the command id, and time comes from
the command. A rejected command changes nothing and produces no postings; its result is still
recorded so that a retry of the same key returns the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.core import access, alerts, billing_alerts, bounds, lots, rules, spending
from ledger.core.commands import (
    AdjustCredits,
    CaptureHold,
    Command,
    CreditBack,
    Expire,
    GrantCredits,
    IssueQuote,
    PlaceHold,
    RaiseBillingAlert,
    RecordUsage,
    RefundLot,
    ReleaseHold,
    RemoveAlert,
    ResetLots,
    RevokeCredits,
    SetAccess,
    SetAlert,
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetStorageUsage,
    SetSuspension,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.entries import Applied, Result, Status
from ledger.core.errors import LedgerError
from ledger.core.state import OrgState
from ledger.core.validation import validate

_HANDLERS: dict[type, Callable[[OrgState, Command, Any], Applied]] = {
    GrantCredits: lots.grant,
    RecordUsage: spending.record_usage,
    Expire: lots.expire,
    ResetLots: lots.reset_lots,
    TransferCredits: lots.transfer,
    RefundLot: lots.refund_lot,
    CreditBack: lots.credit_back,
    AdjustCredits: lots.adjust,
    PlaceHold: spending.place_hold,
    CaptureHold: spending.capture_hold,
    ReleaseHold: spending.release_hold,
    IssueQuote: spending.issue_quote,
    SetSpendingPolicy: rules.set_spending_policy,
    SetTeamBudget: rules.set_team_budget,
    SetMemberLimits: rules.set_member_limits,
    SetKindPriorities: rules.set_kind_priorities,
    SetRate: rules.set_rate,
    SetAlert: alerts.set_alert,
    RemoveAlert: alerts.remove_alert,
    SetAccess: access.set_access,
    SetStorageUsage: access.set_storage_usage,
    RevokeCredits: lots.revoke,
    SetSuspension: access.set_suspension,
    RaiseBillingAlert: billing_alerts.raise_billing_alert,
}


def apply(state: OrgState, command: Command) -> Applied:
    try:
        # The API validated it already; the actor checks again, so that no command that reaches
        # it by another road (a replayed dead letter, a job) can carry a value the store refuses.
        validate(command)
        applied = _HANDLERS[type(command.payload)](state, command, command.payload)
        # A rejected command changed nothing, so only an accepted one can move an alert.
        if applied.state.alerts:
            applied = alerts.judge(applied, command)
        _within_range(applied)
    except LedgerError as error:
        at = getattr(command.payload, "occurred_at", None) or command.at
        rejected = Result(
            Status.REJECTED, balance_after=state.balance(at).total, code=error.code, message=error.message
        )
        return Applied(state=state, postings=(), result=rejected)
    return applied


def _within_range(applied: Applied) -> None:
    """What every command writes stays in the store's range: its postings, the figures of its
    result and its alert events. (The sums it forms are judged where they are formed.)"""
    result = applied.result
    bounds.within_sum(result.balance_after, "the balance")
    bounds.within_sum(result.credits_charged, "the charge")
    for posting in applied.postings:
        bounds.within_sum(posting.amount, f"a posting to {posting.account}")
    for event in applied.alert_events:
        bounds.within_sum(event.value, "an alert's value")
