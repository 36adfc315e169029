"""Commands: the only way an organization's credits, holds and spending rules change.

A command is what a caller asks for; its `payload` (everything the caller chose) is fingerprinted so
that a retry under the same idempotency key can be told apart from a different request reusing it.
The envelope (command id, time received, where to reply) is not part of the fingerprint.

This module holds the types only. What no state could ever accept is `ledger.core.validation`'s;
the wire format and the fingerprint are `ledger.core.wire`'s; what a command names (lots, holds,
teams, products) is `ledger.core.references`'.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias
from uuid import UUID

# Billing's commands live in a module of their own; they are payloads like the rest (and importable from here).
from ledger.core.alert_kinds import BILLING_ALERT_KINDS as BILLING_ALERT_KINDS
from ledger.core.alert_kinds import AlertKind as AlertKind
from ledger.core.billing_commands import AccessStatus as AccessStatus
from ledger.core.billing_commands import RaiseBillingAlert as RaiseBillingAlert
from ledger.core.billing_commands import RevokeCredits as RevokeCredits
from ledger.core.billing_commands import SetAccess as SetAccess
from ledger.core.billing_commands import SetStorageUsage as SetStorageUsage
from ledger.core.billing_commands import SetSuspension as SetSuspension
from ledger.core.money import ZERO, MicroCredits


class LotKind(StrEnum):
    BASE = "base"
    BONUS = "bonus"
    PURCHASED = "purchased"
    ROLLOVER = "rollover"
    SEAT = "seat"
    PROMOTIONAL = "promotional"
    ADJUSTMENT = "adjustment"


# Lower goes first. Expiring bonus before base before purchased (seed 000), monthly before the
# rollover bank (seed 001), included before top-ups (seed 003). Ties break on expiry, then age.
DEFAULT_PRIORITY: Mapping[LotKind, int] = {
    LotKind.PROMOTIONAL: 100,
    LotKind.BONUS: 100,
    LotKind.BASE: 200,
    LotKind.SEAT: 200,
    LotKind.ROLLOVER: 300,
    LotKind.PURCHASED: 400,
    LotKind.ADJUSTMENT: 500,
}


class LotSource(StrEnum):
    SUBSCRIPTION = "subscription"
    PAYMENT = "payment"
    PROMOTION = "promotion"
    REFERRAL = "referral"
    MANUAL = "manual"
    ROLLOVER = "rollover"
    TRANSFER = "transfer"


class RevenueTreatment(StrEnum):
    DEFERRED = "deferred"  # recognized as the credits are used or expire
    IMMEDIATE = "immediate"  # recognized at once
    MARKETING = "marketing"  # free credits: a marketing expense, no revenue


class AtZero(StrEnum):
    """What a debit does when the credits it may use cannot cover it."""

    BLOCK = "block"  # reject the whole debit; nothing is applied
    OVERAGE = "overage"  # apply; the uncovered part is overage, invoiced at the SKU's overage rate
    CREDIT_LIMIT = "credit_limit"  # apply, drawing on a credit line down to -limit; repaid by later grants


class Period(StrEnum):
    """Calendar periods in UTC over which budgets and caps count spending."""

    DAY = "day"
    WEEK = "week"  # from Monday
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class RolloverRule:
    """At the lot's end, move what is left into a rollover bank lot (seed 001).

    The bank holds at most `cap` credits across its lots; each bank lot expires `cycles` calendar
    months after the period it came from ended. What does not fit is breakage."""

    cap: MicroCredits
    cycles: int


@dataclass(frozen=True, slots=True)
class LotTerms:
    """What finance needs to know about a lot; carried unchanged through transfers and rollovers."""

    source: LotSource = LotSource.MANUAL
    refundable: bool = False
    revenue_treatment: RevenueTreatment = RevenueTreatment.DEFERRED
    price_per_credit: Decimal | None = None  # cost basis: what the customer paid per credit
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the transport adds to a command: never part of its fingerprint."""

    command_id: UUID
    organization_id: UUID
    idempotency_key: str
    received_at: datetime
    reply_to: str | None = None


# --- credits in and out ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantCredits:
    amount: MicroCredits
    kind: LotKind = LotKind.BASE
    priority: int | None = None
    effective_at: datetime | None = None
    expires_at: datetime | None = None
    team_id: UUID | None = None  # None: the org's shared pool
    products: frozenset[str] | None = None  # None: every product
    rollover: RolloverRule | None = None
    terms: LotTerms = field(default_factory=LotTerms)
    type: str = field(default="grant_credits", init=False)


@dataclass(frozen=True, slots=True)
class RecordUsage:
    product: str
    quantity: Decimal
    occurred_at: datetime | None = None
    team_id: UUID | None = None
    user_id: str | None = None
    quote_id: UUID | None = None  # charge the binding quote's price
    dimensions: Mapping[str, str] = field(default_factory=dict)  # e.g. model, operation: for reports
    type: str = field(default="record_usage", init=False)


@dataclass(frozen=True, slots=True)
class Expire:
    """End every lot and hold whose time ran out at or before `as_of`: lots' remainders become
    breakage (or go to the rollover bank), holds release what they still reserve."""

    as_of: datetime
    type: str = field(default="expire", init=False)


@dataclass(frozen=True, slots=True)
class ResetLots:
    """End the usable lots of a kind now (seed 000: base credits reset each month)."""

    kind: LotKind = LotKind.BASE
    team_id: UUID | None = None
    type: str = field(default="reset_lots", init=False)


@dataclass(frozen=True, slots=True)
class TransferCredits:
    """Move credits between the org's pool (None) and a team, or between teams, keeping each
    moved part's kind, priority, expiry and terms."""

    amount: MicroCredits
    from_team_id: UUID | None = None
    to_team_id: UUID | None = None
    type: str = field(default="transfer_credits", init=False)


@dataclass(frozen=True, slots=True)
class RefundLot:
    """Take back what is left of a refundable lot (the money goes back through payments)."""

    lot_id: UUID
    reason: str = ""
    type: str = field(default="refund_lot", init=False)


@dataclass(frozen=True, slots=True)
class CreditBack:
    """Reverse a usage debit (e.g. a failed AI job) into the very lots it came from."""

    transaction_id: UUID
    reason: str = ""
    type: str = field(default="credit_back", init=False)


@dataclass(frozen=True, slots=True)
class AdjustCredits:
    """A manual correction: positive adds an adjustment lot, negative debits in consumption order."""

    amount: MicroCredits
    reason: str
    team_id: UUID | None = None
    type: str = field(default="adjust_credits", init=False)


# --- holds and quotes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceHold:
    """Reserve credits for a job whose cost is known only at its end."""

    amount: MicroCredits
    expires_at: datetime
    product: str | None = None  # needed to capture by quantity
    team_id: UUID | None = None
    user_id: str | None = None
    run_id: str | None = None
    cap: MicroCredits | None = None  # most the hold may ever capture, reserved or not
    type: str = field(default="place_hold", init=False)


@dataclass(frozen=True, slots=True)
class CaptureHold:
    """Charge part of a job against its hold: `amount` credits, or `quantity` of the hold's product.
    `final` releases what the hold still reserves."""

    hold_id: UUID
    amount: MicroCredits | None = None
    quantity: Decimal | None = None
    final: bool = False
    type: str = field(default="capture_hold", init=False)


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    hold_id: UUID
    type: str = field(default="release_hold", init=False)


@dataclass(frozen=True, slots=True)
class IssueQuote:
    """A binding quote: usage naming it before `expires_at` is charged this price."""

    product: str
    quantity: Decimal
    expires_at: datetime
    team_id: UUID | None = None
    user_id: str | None = None
    type: str = field(default="issue_quote", init=False)


# --- spending rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetSpendingPolicy:
    """What a debit does at zero, for one product or (product None) for all without their own."""

    at_zero: AtZero
    product: str | None = None
    credit_limit: MicroCredits = ZERO
    type: str = field(default="set_spending_policy", init=False)


@dataclass(frozen=True, slots=True)
class SetTeamBudget:
    """Most a team may spend per period; `amount` None removes the budget."""

    team_id: UUID
    amount: MicroCredits | None
    period: Period = Period.MONTH
    type: str = field(default="set_team_budget", init=False)


@dataclass(frozen=True, slots=True)
class SetMemberLimits:
    """A user's spend cap per period (None: no cap) and whether they may spend the org's shared pool."""

    user_id: str
    cap: MicroCredits | None = None
    period: Period = Period.MONTH
    shared_credits: bool = True
    type: str = field(default="set_member_limits", init=False)


@dataclass(frozen=True, slots=True)
class SetKindPriorities:
    """The org's own default priority per lot kind, for lots granted from now on (lower goes first);
    kinds not named keep the house defaults."""

    priorities: Mapping[LotKind, int]
    type: str = field(default="set_kind_priorities", init=False)


@dataclass(frozen=True, slots=True)
class SetRate:
    """A version of the org's own rate for a product, from `effective_at` on (overrides the catalog)."""

    product: str
    effective_at: datetime
    credits_per_unit: Decimal
    overage_price_per_unit: Decimal | None = None  # money per unit beyond the credits
    cost_per_unit: Decimal | None = None  # cost of goods: what the provider charges per unit
    currency: str = "USD"
    type: str = field(default="set_rate", init=False)


# --- alerts ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAlert:
    """Create or replace an alert. A new or replaced alert is judged at once: if its condition
    already holds, it fires."""

    alert_id: UUID
    kind: AlertKind
    threshold: MicroCredits
    name: str = ""
    team_id: UUID | None = None
    user_id: str | None = None  # HIGH_SPEND only
    period: Period = Period.MONTH  # HIGH_SPEND only
    type: str = field(default="set_alert", init=False)


@dataclass(frozen=True, slots=True)
class RemoveAlert:
    alert_id: UUID
    type: str = field(default="remove_alert", init=False)


Payload: TypeAlias = (
    GrantCredits
    | RecordUsage
    | Expire
    | ResetLots
    | TransferCredits
    | RefundLot
    | CreditBack
    | AdjustCredits
    | PlaceHold
    | CaptureHold
    | ReleaseHold
    | IssueQuote
    | SetSpendingPolicy
    | SetTeamBudget
    | SetMemberLimits
    | SetKindPriorities
    | SetRate
    | SetAlert
    | RemoveAlert
    | SetAccess
    | SetStorageUsage
    | RevokeCredits
    | SetSuspension
    | RaiseBillingAlert
)

# Each payload type by its `type` tag, read off the union itself so that a new payload is named once.
PAYLOAD_TYPES: Mapping[str, type[Payload]] = {
    cls.__dataclass_fields__["type"].default: cls for cls in typing.get_args(Payload)
}


@dataclass(frozen=True, slots=True)
class Command:
    envelope: Envelope
    payload: Payload

    @property
    def organization_id(self) -> UUID:
        return self.envelope.organization_id

    @property
    def idempotency_key(self) -> str:
        return self.envelope.idempotency_key

    @property
    def at(self) -> datetime:
        return self.envelope.received_at
