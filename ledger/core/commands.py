"""Commands: the only way an organization's credits, holds and spending rules change.

A command is what a caller asks for; its `payload` (everything the caller chose) is fingerprinted so
that a retry under the same idempotency key can be told apart from a different request reusing it.
The envelope (command id, time received, where to reply) is not part of the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeAlias
from uuid import UUID

from ledger.core import bounds, codec
from ledger.core.errors import InvalidCommand
from ledger.core.money import ZERO, MicroCredits

IDEMPOTENCY_KEY_LENGTH_MAX = 255
PRODUCT_KEY_LENGTH_MAX = 100
TEXT_LENGTH_MAX = 500
DIMENSIONS_MAX = 16
ROLLOVER_CYCLES_MAX = 120
PRIORITY_MIN, PRIORITY_MAX = 0, 1_000_000
PRODUCTS_PER_LOT_MAX = 100


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


class AlertKind(StrEnum):
    """What an alert watches (seed 003: "almost out", "depleted", "a user spent over 1,000")."""

    LOW_BALANCE = "low_balance"  # available credits (the org's, or a team's own) at or below the threshold
    HIGH_SPEND = "high_spend"  # spend in the current period (org, team or user) at or above the threshold


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
)

PAYLOAD_TYPES: Mapping[str, type[Payload]] = {
    cls.__dataclass_fields__["type"].default: cls  # type: ignore[misc]
    for cls in (
        GrantCredits, RecordUsage, Expire, ResetLots, TransferCredits, RefundLot, CreditBack, AdjustCredits,
        PlaceHold, CaptureHold, ReleaseHold, IssueQuote, SetSpendingPolicy, SetTeamBudget, SetMemberLimits,
        SetKindPriorities, SetRate, SetAlert, RemoveAlert,
    )
}  # fmt: skip


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


# --- validation: what no state could ever accept -----------------------------------------------


def validate(command: Command) -> None:
    """Raise InvalidCommand for a command malformed in itself; checked before it is sent, and again
    by the actor. Every amount, quantity, rate and time is bounded here (`ledger.core.bounds`)."""
    key = command.envelope.idempotency_key
    if not key or len(key) > IDEMPOTENCY_KEY_LENGTH_MAX:
        raise InvalidCommand(f"idempotency key must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} characters")
    check_text(key, "idempotency key")
    at = command.envelope.received_at
    bounds.check_time(at, "receivedAt")
    _VALIDATORS[type(command.payload)](command.payload, at)


def _grant(p: GrantCredits, at: datetime) -> None:
    _amount(p.amount, "amount")
    _priority(p.priority)
    bounds.check_window(p.effective_at, "effectiveAt", at, bounds.BACKDATE_MAX, bounds.FUTURE_DATE_MAX)
    bounds.check_window(p.expires_at, "expiresAt", at, bounds.BACKDATE_MAX, bounds.FUTURE_DATE_MAX)
    if p.expires_at is not None and p.expires_at <= (p.effective_at or at):
        raise InvalidCommand("expiresAt must be after effectiveAt")
    if p.products is not None:
        if not p.products:
            raise InvalidCommand("products must name at least one product, or be omitted for all")
        if len(p.products) > PRODUCTS_PER_LOT_MAX:
            raise InvalidCommand(f"a lot names at most {PRODUCTS_PER_LOT_MAX} products")
        for product in p.products:
            _product(product)
    if p.rollover is not None:
        if p.expires_at is None:
            raise InvalidCommand("a lot that rolls over needs an expiresAt (its period end)")
        bounds.check_credits(p.rollover.cap, "the rollover cap")
        if not 1 <= p.rollover.cycles <= ROLLOVER_CYCLES_MAX:
            raise InvalidCommand(f"rollover needs 1 to {ROLLOVER_CYCLES_MAX} cycles")
    if p.terms.price_per_credit is not None:
        bounds.check_decimal(p.terms.price_per_credit, "pricePerCredit", bounds.MONEY_RATE_MAX)
    check_text(p.terms.currency, "currency")


def _record_usage(p: RecordUsage, at: datetime) -> None:
    _product(p.product)
    _quantity(p.quantity, "quantity")
    bounds.check_window(p.occurred_at, "occurredAt", at, bounds.USAGE_LATE_MAX, bounds.CLOCK_SKEW_MAX)
    check_text(p.user_id, "userId")
    if len(p.dimensions) > DIMENSIONS_MAX:
        raise InvalidCommand(f"at most {DIMENSIONS_MAX} dimensions")
    for name, value in p.dimensions.items():
        check_text(name, "dimension name")
        check_text(value, "dimension value")


def _expire(p: Expire, at: datetime) -> None:
    if p.as_of > at:
        raise InvalidCommand("nothing can be expired ahead of time")
    bounds.check_window(p.as_of, "asOf", at, bounds.BACKDATE_MAX, timedelta(0))


def _transfer(p: TransferCredits, at: datetime) -> None:
    _amount(p.amount, "amount")
    if p.from_team_id == p.to_team_id:
        raise InvalidCommand("a transfer needs two different owners")


def _reason(p: RefundLot | CreditBack, at: datetime) -> None:
    check_text(p.reason, "reason")


def _adjust(p: AdjustCredits, at: datetime) -> None:
    if p.amount == 0:
        raise InvalidCommand("an adjustment cannot be zero")
    bounds.check_credits(p.amount, "amount", negative=True)
    if not p.reason.strip():
        raise InvalidCommand("an adjustment needs a reason")
    check_text(p.reason, "reason")


def _place_hold(p: PlaceHold, at: datetime) -> None:
    _amount(p.amount, "amount")
    if p.expires_at <= at:
        raise InvalidCommand("a hold must expire in the future")
    bounds.check_window(p.expires_at, "expiresAt", at, timedelta(0), bounds.HOLD_TTL_MAX)
    if p.product is not None:
        _product(p.product)
    if p.cap is not None:
        bounds.check_credits(p.cap, "cap")
        if p.cap < p.amount:
            raise InvalidCommand("a hold's cap cannot be below its amount")
    check_text(p.user_id, "userId")
    check_text(p.run_id, "runId")


def _capture_hold(p: CaptureHold, at: datetime) -> None:
    if (p.amount is None) == (p.quantity is None):
        raise InvalidCommand("capture either an amount of credits or a quantity, not both")
    if p.amount is not None:
        bounds.check_credits(p.amount, "amount")
    if p.quantity is not None:
        bounds.check_decimal(p.quantity, "quantity", bounds.QUANTITY_MAX)


def _issue_quote(p: IssueQuote, at: datetime) -> None:
    _product(p.product)
    check_text(p.user_id, "userId")
    _quantity(p.quantity, "quantity")
    if p.expires_at <= at:
        raise InvalidCommand("a quote must expire in the future")
    bounds.check_window(p.expires_at, "expiresAt", at, timedelta(0), bounds.QUOTE_TTL_MAX)


def _spending_policy(p: SetSpendingPolicy, at: datetime) -> None:
    if p.product is not None:
        _product(p.product)
    bounds.check_credits(p.credit_limit, "creditLimit")
    if p.at_zero is not AtZero.CREDIT_LIMIT and p.credit_limit != 0:
        raise InvalidCommand("creditLimit applies only to the CREDIT_LIMIT policy")


def _team_budget(p: SetTeamBudget, at: datetime) -> None:
    if p.amount is not None:
        bounds.check_credits(p.amount, "a budget")


def _member_limits(p: SetMemberLimits, at: datetime) -> None:
    if not p.user_id:
        raise InvalidCommand("userId is required")
    check_text(p.user_id, "userId")
    if p.cap is not None:
        bounds.check_credits(p.cap, "a cap")


def _rate(p: SetRate, at: datetime) -> None:
    _product(p.product)
    bounds.check_window(p.effective_at, "effectiveAt", at, bounds.BACKDATE_MAX, bounds.FUTURE_DATE_MAX)
    bounds.check_decimal(p.credits_per_unit, "creditsPerUnit", bounds.RATE_MAX)
    if p.overage_price_per_unit is not None:
        bounds.check_decimal(p.overage_price_per_unit, "overagePricePerUnit", bounds.MONEY_RATE_MAX)
    if p.cost_per_unit is not None:
        bounds.check_decimal(p.cost_per_unit, "costPerUnit", bounds.MONEY_RATE_MAX)
    if len(p.currency) != 3 or not p.currency.isascii() or not p.currency.isalpha():
        raise InvalidCommand("currency must be a three-letter code")


def _kind_priorities(p: SetKindPriorities, at: datetime) -> None:
    if not p.priorities:
        raise InvalidCommand("name at least one kind")
    for value in p.priorities.values():
        _priority(value)


def _set_alert(p: SetAlert, at: datetime) -> None:
    bounds.check_credits(p.threshold, "threshold")
    check_text(p.name, "name")
    check_text(p.user_id, "userId")
    if p.kind is AlertKind.LOW_BALANCE and p.user_id is not None:
        raise InvalidCommand("a LOW_BALANCE alert watches the organization or a team, not a user")
    if p.team_id is not None and p.user_id is not None:
        raise InvalidCommand("an alert watches a team or a user, not both")
    if p.user_id is not None and not p.user_id:
        raise InvalidCommand("userId cannot be empty")


def _nothing(p: Payload, at: datetime) -> None:
    pass


_VALIDATORS: Mapping[type, Callable[[Any, datetime], None]] = {
    GrantCredits: _grant, RecordUsage: _record_usage, Expire: _expire, ResetLots: _nothing,
    TransferCredits: _transfer, RefundLot: _reason, CreditBack: _reason, AdjustCredits: _adjust,
    PlaceHold: _place_hold, CaptureHold: _capture_hold, ReleaseHold: _nothing, IssueQuote: _issue_quote,
    SetSpendingPolicy: _spending_policy, SetTeamBudget: _team_budget, SetMemberLimits: _member_limits,
    SetKindPriorities: _kind_priorities, SetRate: _rate, SetAlert: _set_alert, RemoveAlert: _nothing,
}  # fmt: skip


def _amount(value: int, name: str) -> None:
    """A positive amount of credits within the range."""
    if value <= 0:
        raise InvalidCommand(f"{name} must be positive")
    bounds.check_credits(value, name)


def _quantity(value: Decimal, name: str) -> None:
    """A positive quantity within the range."""
    if not value.is_finite() or value <= 0:
        raise InvalidCommand(f"{name} must be positive")
    bounds.check_decimal(value, name, bounds.QUANTITY_MAX)


def _priority(value: int | None) -> None:
    if value is not None and not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise InvalidCommand(f"priorities run from {PRIORITY_MIN} to {PRIORITY_MAX}")


def _product(product: str) -> None:
    if not product or len(product) > PRODUCT_KEY_LENGTH_MAX:
        raise InvalidCommand(f"product must be 1 to {PRODUCT_KEY_LENGTH_MAX} characters")
    check_text(product, "product")


def check_text(value: str | None, name: str) -> None:
    """Refuse text no ledger command may carry (too long, or what PostgreSQL cannot store)."""
    if value is None:
        return
    if len(value) > TEXT_LENGTH_MAX:
        raise InvalidCommand(f"{name} must be at most {TEXT_LENGTH_MAX} characters")
    # PostgreSQL's text and jsonb hold neither U+0000 nor a lone surrogate (which is no UTF-8): a
    # command with either could never be journaled, and would fail every batch it is in.
    if "\x00" in value:
        raise InvalidCommand(f"{name} cannot contain the NUL character (U+0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidCommand(f"{name} must be valid Unicode (it holds a lone surrogate)") from None


# --- wire format -------------------------------------------------------------------------------


def payload_to_dict(payload: Payload) -> dict[str, Any]:
    data: dict[str, Any] = codec.to_json(payload)
    return data


def payload_from_dict(data: Mapping[str, Any]) -> Payload:
    cls = PAYLOAD_TYPES.get(data.get("type", ""))
    if cls is None:
        raise InvalidCommand(f"unknown command type {data.get('type')!r}")
    return codec.from_json(cls, data)


def canonical_json(payload: Payload) -> str:
    """The payload as JSON text with sorted keys: what the journal stores and the fingerprint hashes."""
    return json.dumps(payload_to_dict(payload), sort_keys=True, separators=(",", ":"))


def fingerprint(payload: Payload, canonical: str | None = None) -> str:
    """A stable digest of what the caller asked for, to detect reuse of a key for another request."""
    text = canonical_json(payload) if canonical is None else canonical
    return hashlib.sha256(text.encode()).hexdigest()


def encode(command: Command) -> bytes:
    envelope = command.envelope
    return json.dumps(
        {
            "id": str(envelope.command_id),
            "org": str(envelope.organization_id),
            "key": envelope.idempotency_key,
            "at": envelope.received_at.isoformat(),
            "reply": envelope.reply_to,
            "payload": payload_to_dict(command.payload),
        },
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes | str) -> Command:
    data = json.loads(raw)
    envelope = Envelope(
        command_id=UUID(data["id"]),
        organization_id=UUID(data["org"]),
        idempotency_key=data["key"],
        received_at=datetime.fromisoformat(data["at"]),
        reply_to=data["reply"],
    )
    return Command(envelope=envelope, payload=payload_from_dict(data["payload"]))
