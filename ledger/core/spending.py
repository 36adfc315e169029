"""Spending: usage debits, holds and their captures, quotes. One charge path serves them all
(`ledger.core.charge`), so a captured hold, a quoted run and a plain usage event meet the same
limits, order and policy. What starts new spending (usage, a hold, a quote) is first judged by the
plan's access (`ledger.core.access`); a capture is not, its hold was.

Usage is priced by the rate version in force at the event's time among those its dimensions
select (`OrgState.rate_at`); holds and quotes price without dimensions, at the time they are made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from ledger.core import bounds
from ledger.core.access import require_access
from ledger.core.change import Change
from ledger.core.charge import Spender, charge, free_for
from ledger.core.commands import AtZero, CaptureHold, Command, IssueQuote, PlaceHold, RecordUsage, ReleaseHold
from ledger.core.entries import (
    HOLD_ACCOUNT,
    HOLD_OFFSET_ACCOUNT,
    Applied,
)
from ledger.core.errors import (
    CapExceeded,
    HoldClosed,
    InsufficientCredits,
    InvalidCommand,
    NotFound,
    PlanInactive,
    ProductNotInPlan,
    QuoteUnusable,
    TrialEnded,
    UnknownProduct,
)
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits, format_credits, money, price, share_money
from ledger.core.state import (
    NO_DIMENSIONS,
    Hold,
    HoldStatus,
    OrgState,
    Quote,
    Rate,
    require_team,
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A price and whether the org could pay it now (the non-binding "Calculate")."""

    credits: MicroCredits
    affordable: bool
    code: str | None = None
    message: str | None = None


def record_usage(state: OrgState, command: Command, usage: RecordUsage) -> Applied:
    # Lots are judged at the time the usage happened, so late events use the credits valid then.
    at = usage.occurred_at or command.at
    require_access(state.access, usage.product)
    spender = Spender(at, usage.product, usage.team_id, usage.user_id)
    require_team(state, usage.team_id)
    change = Change(state)
    if usage.quote_id is None:
        rate = _rate(state, usage.product, at, usage.dimensions)
        amount = _price(usage.quantity, rate.credits_per_unit)
    else:
        quote = _usable_quote(state, usage, command.at)
        rate = replace(_rate(state, usage.product, at, usage.dimensions), credits_per_unit=quote.credits_per_unit)
        amount = _price(usage.quantity, quote.credits_per_unit)
        quotes = {**state.quotes, quote.id: replace(quote, used_by=command.envelope.command_id)}
        change.replace_state(quotes=quotes)
    uncovered = charge(change, spender, amount, hold=None)
    return change.applied(at, charged=amount, details=_usage_details(rate, usage.quantity, amount, uncovered))


def estimate(state: OrgState, spender: Spender, quantity: Decimal) -> Estimate:
    """Price `quantity` of the spender's product and say whether it could be charged now."""
    assert spender.product is not None
    credits = _price(quantity, _rate(state, spender.product, spender.at).credits_per_unit)
    try:
        require_access(state.access, spender.product)
        require_team(state, spender.team_id)
        charge(Change(state), spender, credits, hold=None)
    except (InsufficientCredits, CapExceeded, NotFound, PlanInactive, TrialEnded, ProductNotInPlan) as refusal:
        return Estimate(credits, False, refusal.code, refusal.message)
    return Estimate(credits, True)


def issue_quote(state: OrgState, command: Command, request: IssueQuote) -> Applied:
    require_access(state.access, request.product)
    require_team(state, request.team_id)
    rate = _rate(state, request.product, command.at)
    spender = Spender(command.at, request.product, request.team_id, request.user_id)
    answer = estimate(state, spender, request.quantity)
    quote = Quote(
        id=derived_id(Namespace.HOLDS_AND_QUOTES, command.envelope.command_id, "quote"),
        transaction_id=command.envelope.command_id,
        product=request.product,
        quantity=request.quantity,
        credits_per_unit=rate.credits_per_unit,
        amount=answer.credits,
        expires_at=request.expires_at,
        team_id=request.team_id,
        user_id=request.user_id,
    )
    change = Change(state)
    change.replace_state(quotes={**state.quotes, quote.id: quote})
    details = {
        "quote_id": str(quote.id),
        "credits": format_credits(answer.credits),
        "affordable": str(answer.affordable).lower(),
    }
    return change.applied(command.at, details=details)


def place_hold(state: OrgState, command: Command, request: PlaceHold) -> Applied:
    require_access(state.access, request.product)
    require_team(state, request.team_id)
    if request.product is not None:
        _rate(state, request.product, command.at)  # an unknown product fails now, not at capture
    change = Change(state)
    spender = Spender(command.at, request.product, request.team_id, request.user_id)
    free = free_for(state, spender, exclude=None)
    policy = state.policy_for(request.product)
    headroom = {
        AtZero.BLOCK: 0,
        AtZero.CREDIT_LIMIT: policy.credit_limit - state.credit_drawn,
        AtZero.OVERAGE: request.amount,
    }[policy.at_zero]
    if request.amount > free + headroom:
        raise InsufficientCredits(f"{format_credits(free)} credits available; the hold needs more")
    # Under OVERAGE holds may fence more than there is; what they fence together stays in range.
    bounds.within_sum(state.balance(command.at).held + request.amount, "what the organization's holds fence")
    hold = Hold(
        id=derived_id(Namespace.HOLDS_AND_QUOTES, command.envelope.command_id, "hold"),
        transaction_id=command.envelope.command_id,
        amount=request.amount,
        reserved=request.amount,
        captured=MicroCredits(0),
        expires_at=request.expires_at,
        placed_at=_after_open_holds(state, command.at),
        product=request.product,
        team_id=request.team_id,
        user_id=request.user_id,
        run_id=request.run_id,
        cap=request.cap,
    )
    change.post(HOLD_ACCOUNT, hold.amount, hold_id=hold.id)
    change.post(HOLD_OFFSET_ACCOUNT, -hold.amount)
    change.replace_state(holds={**state.holds, hold.id: hold})
    return change.applied(command.at, details={"hold_id": str(hold.id)})


def capture_hold(state: OrgState, command: Command, request: CaptureHold) -> Applied:
    at = command.at
    hold = _open_hold(state, request.hold_id, at)
    details: dict[str, str] = {"hold_id": str(hold.id)}
    if request.quantity is not None:
        if hold.product is None:
            raise InvalidCommand("this hold has no product: capture an amount of credits")
        rate = _rate(state, hold.product, at)
        amount = _price(request.quantity, rate.credits_per_unit)
    else:
        assert request.amount is not None
        rate, amount = None, request.amount
    bounds.within_sum(hold.captured + amount, "what the hold has captured")
    if hold.cap is not None and hold.captured + amount > hold.cap:
        raise CapExceeded(f"the hold's cap of {format_credits(hold.cap)} credits would be exceeded")
    change = Change(state)
    uncovered = MicroCredits(0)
    if amount > 0:
        uncovered = charge(change, Spender(at, hold.product, hold.team_id, hold.user_id), amount, hold=hold)
    released = min(amount, hold.reserved)
    rest = hold.reserved - released if request.final else 0
    change.post(HOLD_ACCOUNT, -(released + rest), hold_id=hold.id)
    change.post(HOLD_OFFSET_ACCOUNT, released + rest)
    captured = replace(
        hold,
        reserved=MicroCredits(hold.reserved - released - rest),
        captured=MicroCredits(hold.captured + amount),
        status=HoldStatus.FINISHED if request.final else HoldStatus.OPEN,
    )
    change.replace_state(holds={**change.state.holds, hold.id: captured})
    if rate is not None and request.quantity is not None:
        details |= _usage_details(rate, request.quantity, amount, uncovered)
    elif uncovered:
        details["overage_credits"] = format_credits(uncovered)
    return change.applied(at, charged=amount, details=details)


def release_hold(state: OrgState, command: Command, request: ReleaseHold) -> Applied:
    hold = _open_hold(state, request.hold_id, command.at)
    change = Change(state)
    change.post(HOLD_ACCOUNT, -hold.reserved, hold_id=hold.id)
    change.post(HOLD_OFFSET_ACCOUNT, hold.reserved)
    released = replace(hold, reserved=MicroCredits(0), status=HoldStatus.RELEASED)
    change.replace_state(holds={**state.holds, hold.id: released})
    return change.applied(command.at, details={"hold_id": str(hold.id)})


def expire_hold(change: Change, hold: Hold) -> None:
    """Release an expired hold's reservation (called by expiry)."""
    change.post(HOLD_ACCOUNT, -hold.reserved, hold_id=hold.id)
    change.post(HOLD_OFFSET_ACCOUNT, hold.reserved)
    expired = replace(hold, reserved=MicroCredits(0), status=HoldStatus.EXPIRED)
    change.replace_state(holds={**change.state.holds, hold.id: expired})


def _after_open_holds(state: OrgState, at: datetime) -> datetime:
    """`at`, or just after the newest open hold: placement order must be strict even when two
    holds arrive in the same microsecond, since it decides whose fence comes first."""
    newest = max((h.placed_at for h in state.holds.values() if h.status is HoldStatus.OPEN), default=None)
    return at if newest is None or at > newest else newest + timedelta(microseconds=1)


def _price(quantity: Decimal, credits_per_unit: Decimal) -> MicroCredits:
    """The price of a debit, which may not pass the ledger's range (OUT_OF_RANGE)."""
    amount = price(quantity, credits_per_unit)
    bounds.within_sum(amount, "the price")
    return amount


# --- lookups -----------------------------------------------------------------------------------


def _rate(state: OrgState, product: str, at: datetime, dimensions: Mapping[str, str] = NO_DIMENSIONS) -> Rate:
    rate = state.rate_at(product, at, dimensions)
    if rate is None:
        raise UnknownProduct(f"no rate for product {product!r}")
    return rate


def _open_hold(state: OrgState, hold_id: UUID, at: datetime) -> Hold:
    hold = state.holds.get(hold_id)
    if hold is None:
        raise NotFound(f"no hold {hold_id}")
    if not hold.open_at(at):
        status = HoldStatus.EXPIRED if hold.status is HoldStatus.OPEN else hold.status
        raise HoldClosed(f"hold {hold_id} is {status.value}")
    return hold


def _usable_quote(state: OrgState, usage: RecordUsage, at: datetime) -> Quote:
    assert usage.quote_id is not None
    quote = state.quotes.get(usage.quote_id)
    if quote is None:
        raise NotFound(f"no quote {usage.quote_id}")
    if quote.used_by is not None:
        raise QuoteUnusable("the quote was already used")
    if at >= quote.expires_at:
        raise QuoteUnusable("the quote has expired")
    if quote.product != usage.product:
        raise QuoteUnusable(f"the quote is for {quote.product!r}")
    if usage.quantity > quote.quantity:
        raise QuoteUnusable(f"the quote covers at most {quote.quantity} units")
    if (quote.team_id, quote.user_id) != (usage.team_id, usage.user_id) and quote.team_id is not None:
        raise QuoteUnusable("the quote was issued for another team")
    return quote


def _usage_details(rate: Rate, quantity: Decimal, amount: MicroCredits, uncovered: MicroCredits) -> dict[str, str]:
    """Cost of goods and overage money, for margins and invoices."""
    details: dict[str, str] = {"credits_per_unit": str(rate.credits_per_unit)}
    if rate.cost_per_unit is not None:
        details["cost"] = str(money(quantity, rate.cost_per_unit))
        details["currency"] = rate.currency
    if uncovered:
        details["overage_credits"] = format_credits(uncovered)
        if rate.overage_price_per_unit is not None and amount:
            # The uncovered share of the event's quantity, at the SKU's overage price.
            details["overage_amount"] = str(share_money(quantity, uncovered, amount, rate.overage_price_per_unit))
            details["currency"] = rate.currency
    return details
