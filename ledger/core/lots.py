"""Lots' lives: granted, moved between owners, ended by expiry or reset (into breakage or the
rollover bank), refunded, credited back, corrected. Every change is postings, never an edit."""

from __future__ import annotations

import heapq
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from ledger.core import bounds
from ledger.core.change import Change
from ledger.core.charge import Spender, counted_keys, reserved_by_lot
from ledger.core.commands import (
    DEFAULT_PRIORITY,
    AdjustCredits,
    Command,
    CreditBack,
    Expire,
    GrantCredits,
    LotKind,
    LotSource,
    RefundLot,
    ResetLots,
    RevokeCredits,
    TransferCredits,
)
from ledger.core.entries import (
    ADJUSTMENT_ACCOUNT,
    BREAKAGE_ACCOUNT,
    CREDIT_LINE_ACCOUNT,
    ISSUANCE_ACCOUNT,
    OVERAGE_ACCOUNT,
    REFUND_ACCOUNT,
    REVOCATION_ACCOUNT,
    USAGE_ACCOUNT,
    Applied,
)
from ledger.core.errors import InsufficientCredits, NotFound, NotReversible
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits, credits_money, format_credits
from ledger.core.spending import expire_hold
from ledger.core.state import HoldStatus, Lot, OrgState, add_months, require_team


def _lot_id(command: Command, tag: str) -> UUID:
    """Lot ids derive from the command, so applying it again yields the same lots."""
    return derived_id(Namespace.LOTS, command.envelope.command_id, tag)


def grant(state: OrgState, command: Command, request: GrantCredits) -> Applied:
    require_team(state, request.team_id)
    at = command.at
    lot = Lot(
        id=_lot_id(command, "0"),
        kind=request.kind,
        amount=request.amount,
        remaining=request.amount,
        priority=state.priority_of(request.kind) if request.priority is None else request.priority,
        effective_at=request.effective_at or at,
        expires_at=request.expires_at,
        created_at=at,
        team_id=request.team_id,
        products=request.products,
        rollover=request.rollover,
        terms=request.terms,
    )
    change = Change(state)
    _issue(change, lot, at)
    return change.applied(at, details={"lot_id": str(lot.id)})


def _issue(change: Change, lot: Lot, at: datetime) -> None:
    """New credits: issued into the lot, which first repays what the org drew on its credit line
    if it could have paid for that usage: a pool lot for every product, usable now. (A lot that
    starts later repays nothing; the line stays drawn until a usable grant comes.)"""
    change.post(f"{ISSUANCE_ACCOUNT}:{lot.kind.value}", -lot.amount)
    change.add_lot(lot)
    _repay_credit_line(change, lot, at)
    within_range(change)


def within_range(change: Change) -> None:
    """Credits coming in (a grant, an adjustment, a credit-back) may not take what the org's lots
    hold, usable now or later, past the ledger's range."""
    bounds.within_sum(sum(lot.remaining for lot in change.lots()), "the organization's credits")


def _repay_credit_line(change: Change, lot: Lot, at: datetime) -> None:
    drawn = change.state.credit_drawn
    if drawn > 0 and lot.team_id is None and lot.products is None and lot.usable_at(at):
        repaid = min(drawn, lot.amount)
        change.move(lot.id, -repaid)
        change.post(CREDIT_LINE_ACCOUNT, repaid)
        change.replace_state(credit_drawn=MicroCredits(drawn - repaid))


def expire(state: OrgState, command: Command, request: Expire) -> Applied:
    """End every lot and hold due by `as_of`, oldest expiry first, so that bank lots made on the
    way (and due themselves) are ended in turn and the bank cap is judged at each period's end."""
    change = Change(state)
    due = [(lot.expires_at, str(lot.id), lot.id) for lot in state.lots if _due(lot, request.as_of)]
    heapq.heapify(due)
    while due:
        _, _, lot_id = heapq.heappop(due)
        lot = change.lot(lot_id)
        assert lot is not None and lot.expires_at is not None
        bank = _end(change, command, lot, lot.expires_at)
        if bank is not None and _due(bank, request.as_of):
            assert bank.expires_at is not None
            heapq.heappush(due, (bank.expires_at, str(bank.id), bank.id))
    for hold in state.holds.values():
        if hold.status is HoldStatus.OPEN and hold.expires_at <= request.as_of:
            expire_hold(change, hold)
    return change.applied(request.as_of)


def _due(lot: Lot, as_of: datetime) -> bool:
    return lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of


def reset_lots(state: OrgState, command: Command, request: ResetLots) -> Applied:
    at = command.at
    change = Change(state)
    for lot in state.lots:
        if lot.kind is request.kind and lot.team_id == request.team_id and lot.usable_at(at):
            _end(change, command, lot, at)
    return change.applied(at)


def _end(change: Change, command: Command, lot: Lot, ended_at: datetime) -> Lot | None:
    """End a lot: what is left goes to its rollover bank up to the cap, the rest is breakage."""
    rest = lot.remaining
    banked = 0
    bank: Lot | None = None
    if lot.rollover is not None:
        in_bank = sum(
            other.remaining
            for other in change.lots()
            if other.kind is LotKind.ROLLOVER and other.team_id == lot.team_id and other.usable_at(ended_at)
        )
        banked = max(0, min(rest, lot.rollover.cap - in_bank))
    change.move(lot.id, -rest)
    if banked:
        bank = Lot(
            id=_lot_id(command, f"bank:{lot.id}"),
            kind=LotKind.ROLLOVER,
            amount=MicroCredits(banked),
            remaining=MicroCredits(banked),
            priority=change.state.priority_of(LotKind.ROLLOVER),
            effective_at=ended_at,
            expires_at=add_months(ended_at, lot.rollover.cycles) if lot.rollover else None,
            created_at=ended_at,
            team_id=lot.team_id,
            products=lot.products,
            terms=replace(lot.terms, source=LotSource.ROLLOVER),
            parent_id=lot.id,
        )
        change.add_lot(bank)
    change.post(f"{BREAKAGE_ACCOUNT}:{lot.kind.value}", rest - banked)
    return bank


def transfer(state: OrgState, command: Command, request: TransferCredits) -> Applied:
    """Split the source's lots (in consumption order) into new lots owned by the destination."""
    require_team(state, request.from_team_id)
    require_team(state, request.to_team_id)
    at = command.at
    source = sorted(
        (lot for lot in state.lots if lot.team_id == request.from_team_id and lot.usable_at(at)),
        key=Lot.consumption_key,
    )
    held = state.balance(at).held if request.from_team_id is None else 0
    movable = sum(lot.remaining for lot in source) - held
    if request.amount > movable:
        raise InsufficientCredits(f"{format_credits(max(movable, 0))} credits can be moved")
    change = Change(state)
    left: int = request.amount
    for index, lot in enumerate(source):
        if left == 0:
            break
        part = min(lot.remaining, left)
        left -= part
        change.move(lot.id, -part)
        change.add_lot(
            replace(
                lot,
                id=_lot_id(command, f"transfer:{index}"),
                amount=MicroCredits(part),
                remaining=MicroCredits(part),
                team_id=request.to_team_id,
                parent_id=lot.id,
            )
        )
    return change.applied(at)


def refund_lot(state: OrgState, command: Command, request: RefundLot) -> Applied:
    lot = next((lot for lot in state.lots if lot.id == request.lot_id), None)
    if lot is None:
        raise NotFound(f"no lot {request.lot_id}")
    if not lot.terms.refundable:
        raise NotReversible("the lot is not refundable")
    if lot.remaining == 0:
        raise NotReversible("nothing is left in the lot to refund")
    change = Change(state)
    change.move(lot.id, -lot.remaining)
    change.post(f"{REFUND_ACCOUNT}:{lot.kind.value}", lot.remaining)
    details = {"lot_id": str(lot.id), "credits_refunded": format_credits(lot.remaining)}
    if lot.terms.price_per_credit is not None:
        details["amount_refunded"] = str(credits_money(lot.remaining, lot.terms.price_per_credit))
        details["currency"] = lot.terms.currency or ""
    return change.applied(command.at, details=details)


def credit_back(state: OrgState, command: Command, request: CreditBack) -> Applied:
    """Reverse a debit into the lots it came from, with their own expiry: credits returned to a lot
    that has since expired are breakage at the next expiry run."""
    debit = state.debits.get(request.transaction_id)
    if debit is None:
        raise NotFound(f"no usage transaction {request.transaction_id}")
    if debit.reversed:
        raise NotReversible("the debit was already credited back")
    change = Change(state)
    for lot_id, amount in debit.lot_legs:
        if change.lot(lot_id) is None:
            raise NotFound(f"lot {lot_id} of the debit is not loaded")
        change.move(lot_id, amount)
    if debit.uncovered:
        if debit.uncovered_account == CREDIT_LINE_ACCOUNT:
            # Repay the line as far as it is still drawn; what later grants already repaid
            # comes back as an adjustment lot.
            repaid = min(debit.uncovered, change.state.credit_drawn)
            change.post(CREDIT_LINE_ACCOUNT, repaid)
            change.replace_state(credit_drawn=MicroCredits(change.state.credit_drawn - repaid))
            if debit.uncovered > repaid:
                # Funded by the reversal itself, not by new issuance: later grants paid this part.
                change.add_lot(_adjustment_lot(command, MicroCredits(debit.uncovered - repaid), None))
        else:
            change.post(f"{OVERAGE_ACCOUNT}:{debit.product}", debit.uncovered)
    change.post(f"{USAGE_ACCOUNT}:{debit.product}", -debit.charge)
    spend = dict(change.state.spend)
    spender = Spender(debit.occurred_at, debit.product, debit.team_id, debit.user_id)
    for key in counted_keys(state, spender):
        if key in spend:
            spend[key] = MicroCredits(max(0, spend[key] - debit.charge))
    debits = {**state.debits, debit.transaction_id: replace(debit, reversed=True)}
    within_range(change)
    change.replace_state(spend=spend, debits=debits)
    return change.applied(command.at, charged=-debit.charge)


def adjust(state: OrgState, command: Command, request: AdjustCredits) -> Applied:
    require_team(state, request.team_id)
    at = command.at
    change = Change(state)
    if request.amount > 0:
        lot = _adjustment_lot(command, request.amount, request.team_id)
        _issue(change, lot, at)
        return change.applied(at, details={"lot_id": str(lot.id)})
    wanted = -request.amount
    lots = sorted(
        (lot for lot in state.lots if lot.team_id == request.team_id and lot.usable_at(at)),
        key=Lot.consumption_key,
    )
    if sum(lot.remaining for lot in lots) < wanted:
        raise InsufficientCredits("the adjustment is larger than the credits left")
    left = wanted
    for lot in lots:
        take = min(lot.remaining, left)
        change.move(lot.id, -take)
        left -= take
        if left == 0:
            break
    change.post(ADJUSTMENT_ACCOUNT, wanted)
    return change.applied(at)


def revoke(state: OrgState, command: Command, request: RevokeCredits) -> Applied:
    """Take back up to `amount` of the subscription credits that end at `expires_at` (a seat
    decrease's defined reversal): from the org's pool first, then teams' (credits transferred to a
    team keep their terms and expiry), each in consumption order. What open holds fence stays theirs
    (their work was authorized), so this never fails for want of credits: it takes what there is."""
    at = command.at
    reserved = reserved_by_lot(state, at)
    lots = sorted(
        (
            lot
            for lot in state.lots
            if lot.terms.source is LotSource.SUBSCRIPTION and lot.expires_at == request.expires_at and lot.usable_at(at)
        ),
        key=lambda lot: (lot.team_id is not None, lot.consumption_key()),
    )
    change = Change(state)
    left: int = request.amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining - reserved.get(lot.id, 0), left)
        if take > 0:
            change.move(lot.id, -take)
            left -= take
    revoked = request.amount - left
    change.post(REVOCATION_ACCOUNT, revoked)
    details = {"revoked": format_credits(MicroCredits(revoked)), "requested": format_credits(request.amount)}
    return change.applied(at, details=details)


def _adjustment_lot(command: Command, amount: MicroCredits, team_id: UUID | None) -> Lot:
    at = command.at
    return Lot(
        id=_lot_id(command, "adjustment"),
        kind=LotKind.ADJUSTMENT,
        amount=amount,
        remaining=amount,
        priority=DEFAULT_PRIORITY[LotKind.ADJUSTMENT],  # corrections go last whatever the org's order
        effective_at=at,
        expires_at=None,
        created_at=at,
        team_id=team_id,
    )
