"""The pure step of an organization's actor: `apply(state, command) -> Applied`.

Deterministic: ids of new lots, holds and quotes derive from the command id, and time comes from
the command. A rejected command changes nothing and produces no postings; its result is still
recorded so that a retry of the same key returns the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.core import alerts, lots, rules, spending
from ledger.core.commands import (
    AdjustCredits,
    CaptureHold,
    Command,
    CreditBack,
    Expire,
    GrantCredits,
    IssueQuote,
    PlaceHold,
    RecordUsage,
    RefundLot,
    ReleaseHold,
    RemoveAlert,
    ResetLots,
    SetAlert,
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.entries import Applied, Result, Status
from ledger.core.errors import LedgerError
from ledger.core.state import OrgState

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
}


def apply(state: OrgState, command: Command) -> Applied:
    try:
        applied = _HANDLERS[type(command.payload)](state, command, command.payload)
    except LedgerError as error:
        at = getattr(command.payload, "occurred_at", None) or command.at
        rejected = Result(
            Status.REJECTED, balance_after=state.balance(at).total, code=error.code, message=error.message
        )
        return Applied(state=state, postings=(), result=rejected)
    # A rejected command changed nothing, so only an accepted one can move an alert.
    return alerts.judge(applied, command) if applied.state.alerts else applied
