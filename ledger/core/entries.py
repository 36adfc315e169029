"""What applying a command produces: postings (double entry), a result, and the new state.

Accounts (signed micro-credits; every transaction's legs sum to zero):

    issuance:<kind>     credits created by grants (negative: the source of every lot)
    lot                 one credit lot (with `lot_id`); its sum is the lot's remaining
    usage:<product>     credits consumed by usage of a product
    breakage:<kind>     credits that expired unused
    refund:<kind>       credits taken back by refunding a lot
    adjustment          credits removed by a manual correction
    revocation          subscription credits taken back by a seat decrease (RevokeCredits)
    overage:<product>   usage the credits did not cover, to invoice (negative: owed)
    credit_line         what the org has drawn on its credit limit (negative: owed)
    hold                one hold's reservation (with `hold_id`): memo legs, balanced by
    hold:offset         ...this account; a hold moves no credits, it only fences them
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from ledger.core import codec
from ledger.core.commands import AlertKind
from ledger.core.money import ZERO, MicroCredits
from ledger.core.state import Lot, OrgState

ISSUANCE_ACCOUNT = "issuance"
LOT_ACCOUNT = "lot"
USAGE_ACCOUNT = "usage"
BREAKAGE_ACCOUNT = "breakage"
REFUND_ACCOUNT = "refund"
ADJUSTMENT_ACCOUNT = "adjustment"
REVOCATION_ACCOUNT = "revocation"
OVERAGE_ACCOUNT = "overage"
CREDIT_LINE_ACCOUNT = "credit_line"
HOLD_ACCOUNT = "hold"
HOLD_OFFSET_ACCOUNT = "hold:offset"


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction. Amounts are signed and sum to zero across a transaction."""

    account: str
    amount: MicroCredits
    lot_id: UUID | None = None
    hold_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What the caller learns. `details` carries command-specific facts as strings (ids made,
    overage, cost of goods), so the wire format never changes shape per command."""

    status: Status
    credits_charged: MicroCredits = ZERO
    balance_after: MicroCredits = ZERO
    code: str | None = None
    message: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


def result_to_dict(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = codec.to_json(result)
    return data


def result_from_dict(data: Mapping[str, Any]) -> Result:
    return codec.from_json(Result, data)


class AlertState(StrEnum):
    TRIGGERED = "triggered"  # the condition started to hold
    RESOLVED = "resolved"  # it stopped holding: a top-up, a release, a new period


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert crossing its threshold, journaled with the command that made it cross. It carries
    the alert as it was, so the history reads the same after the alert is changed or removed."""

    id: UUID
    alert_id: UUID
    transaction_id: UUID  # the command that made it cross
    state: AlertState
    kind: AlertKind
    name: str
    threshold: MicroCredits
    value: MicroCredits  # the measured balance or spend
    at: datetime
    team_id: UUID | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    state: OrgState
    postings: tuple[Posting, ...]
    result: Result
    new_lots: tuple[Lot, ...] = ()
    touched_lots: tuple[Lot, ...] = ()
    alert_events: tuple[AlertEvent, ...] = ()
