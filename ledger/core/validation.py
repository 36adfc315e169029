"""What no state could ever accept: a command malformed in itself.

Checked before a command is sent (by the API and the jobs) and again by the actor, so that nothing
out of range or unstorable reaches a batch. `validate` is one table of small checks, one per
payload type, the way `ledger.core.apply` is one table of handlers; every amount, quantity, rate,
time and text is bounded by `ledger.core.bounds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.core import bounds
from ledger.core.commands import (
    BILLING_ALERT_KINDS,
    AdjustCredits,
    AlertKind,
    AtZero,
    CaptureHold,
    Command,
    CreditBack,
    Expire,
    GrantCredits,
    IssueQuote,
    Payload,
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
from ledger.core.errors import InvalidCommand


def validate(command: Command) -> None:
    """Raise InvalidCommand for a command malformed in itself; checked before it is sent, and again
    by the actor. Every amount, quantity, rate and time is bounded here (`ledger.core.bounds`)."""
    key = command.envelope.idempotency_key
    if not key or len(key) > bounds.IDEMPOTENCY_KEY_LENGTH_MAX:
        raise InvalidCommand(f"idempotency key must be 1 to {bounds.IDEMPOTENCY_KEY_LENGTH_MAX} characters")
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
    _products(p.products, "a lot", bounds.PRODUCTS_PER_LOT_MAX)
    if p.rollover is not None:
        if p.expires_at is None:
            raise InvalidCommand("a lot that rolls over needs an expiresAt (its period end)")
        bounds.check_credits(p.rollover.cap, "the rollover cap")
        if not 1 <= p.rollover.cycles <= bounds.ROLLOVER_CYCLES_MAX:
            raise InvalidCommand(f"rollover needs 1 to {bounds.ROLLOVER_CYCLES_MAX} cycles")
    if p.terms.price_per_credit is not None:
        bounds.check_decimal(p.terms.price_per_credit, "pricePerCredit", bounds.MONEY_RATE_MAX)
    check_text(p.terms.currency, "currency")


def _record_usage(p: RecordUsage, at: datetime) -> None:
    check_product(p.product)
    _quantity(p.quantity, "quantity")
    bounds.check_window(p.occurred_at, "occurredAt", at, bounds.USAGE_LATE_MAX, bounds.CLOCK_SKEW_MAX)
    check_text(p.user_id, "userId")
    if len(p.dimensions) > bounds.DIMENSIONS_MAX:
        raise InvalidCommand(f"at most {bounds.DIMENSIONS_MAX} dimensions")
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
        check_product(p.product)
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
    check_product(p.product)
    check_text(p.user_id, "userId")
    _quantity(p.quantity, "quantity")
    if p.expires_at <= at:
        raise InvalidCommand("a quote must expire in the future")
    bounds.check_window(p.expires_at, "expiresAt", at, timedelta(0), bounds.QUOTE_TTL_MAX)


def _spending_policy(p: SetSpendingPolicy, at: datetime) -> None:
    if p.product is not None:
        check_product(p.product)
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
    check_product(p.product)
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
    if p.kind is AlertKind.STORAGE_OVER_QUOTA:
        raise InvalidCommand("STORAGE_OVER_QUOTA is built in: it watches the plan's storage quota by itself")
    if p.kind in BILLING_ALERT_KINDS:
        raise InvalidCommand(f"{p.kind.name} is raised by billing, not watched by a rule")
    if p.kind is AlertKind.AUTO_RECHARGE and (p.team_id is not None or p.user_id is not None):
        raise InvalidCommand("AUTO_RECHARGE watches the organization's balance (set it with setAutoRecharge)")
    bounds.check_credits(p.threshold, "threshold")
    check_text(p.name, "name")
    check_text(p.user_id, "userId")
    if p.kind is AlertKind.LOW_BALANCE and p.user_id is not None:
        raise InvalidCommand("a LOW_BALANCE alert watches the organization or a team, not a user")
    if p.team_id is not None and p.user_id is not None:
        raise InvalidCommand("an alert watches a team or a user, not both")
    if p.user_id is not None and not p.user_id:
        raise InvalidCommand("userId cannot be empty")


def _access(p: SetAccess, at: datetime) -> None:
    if len(p.plan) > bounds.PLAN_KEY_LENGTH_MAX:
        raise InvalidCommand(f"plan must be at most {bounds.PLAN_KEY_LENGTH_MAX} characters")
    check_text(p.plan, "plan")
    _products(p.products, "a plan", bounds.PRODUCTS_PER_PLAN_MAX)
    if p.storage_quota_gb is not None:
        _gigabytes(p.storage_quota_gb, "storageQuotaGb")


def _storage_usage(p: SetStorageUsage, at: datetime) -> None:
    _gigabytes(p.gigabytes, "gigabytes")


def _revoke(p: RevokeCredits, at: datetime) -> None:
    _amount(p.amount, "amount")
    bounds.check_window(p.expires_at, "expiresAt", at, bounds.BACKDATE_MAX, bounds.FUTURE_DATE_MAX)
    check_text(p.reason, "reason")


def _suspension(p: SetSuspension, at: datetime) -> None:
    check_text(p.reason, "reason")


def _billing_alert(p: RaiseBillingAlert, at: datetime) -> None:
    if p.kind not in BILLING_ALERT_KINDS:
        raise InvalidCommand(f"{p.kind.name} is not raised by billing")
    check_text(p.name, "name")
    bounds.check_credits(p.value, "value")
    bounds.check_credits(p.threshold, "threshold")


def _nothing(p: Payload, at: datetime) -> None:
    pass


_VALIDATORS: Mapping[type, Callable[[Any, datetime], None]] = {
    GrantCredits: _grant, RecordUsage: _record_usage, Expire: _expire, ResetLots: _nothing,
    TransferCredits: _transfer, RefundLot: _reason, CreditBack: _reason, AdjustCredits: _adjust,
    PlaceHold: _place_hold, CaptureHold: _capture_hold, ReleaseHold: _nothing, IssueQuote: _issue_quote,
    SetSpendingPolicy: _spending_policy, SetTeamBudget: _team_budget, SetMemberLimits: _member_limits,
    SetKindPriorities: _kind_priorities, SetRate: _rate, SetAlert: _set_alert, RemoveAlert: _nothing,
    SetAccess: _access, SetStorageUsage: _storage_usage, RevokeCredits: _revoke, SetSuspension: _suspension,
    RaiseBillingAlert: _billing_alert,
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


def _products(products: frozenset[str] | None, owner: str, most: int) -> None:
    """None (every product), or one to `most` product keys."""
    if products is None:
        return
    if not products:
        raise InvalidCommand("products must name at least one product, or be omitted for all")
    if len(products) > most:
        raise InvalidCommand(f"{owner} names at most {most} products")
    for product in products:
        check_product(product)


def _gigabytes(value: Decimal, name: str) -> None:
    bounds.check_decimal(value, name, bounds.STORAGE_GB_MAX, bounds.STORAGE_GB_DECIMALS)


def _priority(value: int | None) -> None:
    if value is not None and not bounds.PRIORITY_MIN <= value <= bounds.PRIORITY_MAX:
        raise InvalidCommand(f"priorities run from {bounds.PRIORITY_MIN} to {bounds.PRIORITY_MAX}")


def check_product(product: str) -> None:
    """A product key: 1 to PRODUCT_KEY_LENGTH_MAX characters of storable text."""
    if not product or len(product) > bounds.PRODUCT_KEY_LENGTH_MAX:
        raise InvalidCommand(f"product must be 1 to {bounds.PRODUCT_KEY_LENGTH_MAX} characters")
    check_text(product, "product")


def check_text(value: str | None, name: str) -> None:
    """Refuse text no ledger command may carry (too long, or what PostgreSQL cannot store)."""
    if value is None:
        return
    if len(value) > bounds.TEXT_LENGTH_MAX:
        raise InvalidCommand(f"{name} must be at most {bounds.TEXT_LENGTH_MAX} characters")
    # PostgreSQL's text and jsonb hold neither U+0000 nor a lone surrogate (which is no UTF-8): a
    # command with either could never be journaled, and would fail every batch it is in.
    if "\x00" in value:
        raise InvalidCommand(f"{name} cannot contain the NUL character (U+0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidCommand(f"{name} must be valid Unicode (it holds a lone surrogate)") from None
