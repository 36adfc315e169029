"""The charge path: who may spend what, from which lots, within which limits. Every debit (usage,
a hold's capture) is charged here, and a hold is fenced on the lots the same order would draw
on, so a captured hold, a quoted run and a plain usage event meet the same limits, order and
policy. The meters (`ledger.core.meter`) read the same limits and fences to say what is spendable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.core import alerts, bounds
from ledger.core.change import Change
from ledger.core.commands import AtZero
from ledger.core.entries import CREDIT_LINE_ACCOUNT, OVERAGE_ACCOUNT, USAGE_ACCOUNT
from ledger.core.errors import CapExceeded, InsufficientCredits
from ledger.core.money import MicroCredits, format_credits
from ledger.core.state import Hold, Lot, OrgState, SpendKey, period_start, team_scope, user_scope

UNPRICED_PRODUCT = "hold"  # the usage account of captures by amount on a hold with no product


@dataclass(frozen=True, slots=True)
class Spender:
    """Who spends, for what, and when: what decides which lots and limits apply."""

    at: datetime
    product: str | None
    team_id: UUID | None = None
    user_id: str | None = None


def charge(change: Change, spender: Spender, amount: MicroCredits, hold: Hold | None) -> MicroCredits:
    """Debit `amount` for `spender`: check budgets and caps, take from the lots it may use in
    consumption order, and settle any shortfall by the product's at-zero policy. Returns the part
    no lot covered (overage or credit line)."""
    state = change.state
    spend = _counted_spend(state, spender, amount)
    reserved = reserved_by_lot(state, spender.at, exclude=hold)
    left: int = amount
    for lot in _spendable_lots(state, spender):
        if left == 0:
            break
        take = min(lot.remaining - reserved.get(lot.id, 0), left)
        if take > 0:
            change.move(lot.id, -take)
            left -= take
    shortfall = MicroCredits(left)
    product = spender.product or UNPRICED_PRODUCT
    if shortfall:
        policy = state.policy_for(spender.product)
        if policy.at_zero is AtZero.OVERAGE:
            change.post(f"{OVERAGE_ACCOUNT}:{product}", -shortfall)
        elif policy.at_zero is AtZero.CREDIT_LIMIT and state.credit_drawn + shortfall <= policy.credit_limit:
            change.post(CREDIT_LINE_ACCOUNT, -shortfall)
            change.replace_state(credit_drawn=MicroCredits(state.credit_drawn + shortfall))
        else:
            raise InsufficientCredits(f"short by {format_credits(shortfall)} credits")
    change.post(f"{USAGE_ACCOUNT}:{product}", amount)
    if spend:
        change.replace_state(spend={**change.state.spend, **spend})
    return shortfall


def _spendable_lots(state: OrgState, spender: Spender) -> list[Lot]:
    """The lots this spender may draw on, in the order to draw them: the team's own lots first,
    then the org's shared pool unless the member's shared-credit toggle is off."""
    limits = state.members.get(spender.user_id) if spender.user_id is not None else None
    shared = limits is None or limits.shared_credits
    owners: list[UUID | None] = [spender.team_id] if spender.team_id is not None else []
    if shared:
        owners.append(None)
    rank: dict[UUID | None, int] = {owner: index for index, owner in enumerate(owners)}
    lots = [
        lot for lot in state.lots if lot.team_id in rank and lot.usable_at(spender.at) and lot.covers(spender.product)
    ]
    if len(lots) < 2:  # most organizations spend from one lot at a time: nothing to order
        return lots
    return sorted(lots, key=lambda lot: (rank[lot.team_id], lot.consumption_key()))


def reserved_by_lot(state: OrgState, at: datetime, exclude: Hold | None = None) -> dict[UUID, int]:
    """Where open holds' reservations sit, less the fence of `exclude` (a capturing hold may spend
    its own). Every open hold, oldest first, is fenced on the lots its own spender could draw on,
    in that spender's order; the capturing hold keeps its place in that order, so its capture never
    lets a younger hold's fence slide onto the credits it reserved."""
    if not state.holds:
        return {}
    reserved: dict[UUID, int] = {}
    own: dict[UUID, int] = {}
    holds = sorted((h for h in state.holds.values() if h.open_at(at) and h.reserved > 0), key=_placement)
    for hold in holds:
        need: int = hold.reserved
        for lot in _spendable_lots(state, Spender(at, hold.product, hold.team_id, hold.user_id)):
            if need == 0:
                break
            fenced = min(lot.remaining - reserved.get(lot.id, 0), need)
            if fenced > 0:
                reserved[lot.id] = reserved.get(lot.id, 0) + fenced
                need -= fenced
                if exclude is not None and hold.id == exclude.id:
                    own[lot.id] = own.get(lot.id, 0) + fenced
    return {lot_id: amount - own.get(lot_id, 0) for lot_id, amount in reserved.items()}


def _placement(hold: Hold) -> tuple[datetime, str]:
    return (hold.placed_at, str(hold.id))


def free_for(state: OrgState, spender: Spender, exclude: Hold | None) -> int:
    """What this spender could take now: its spendable lots less other holds' fences on them."""
    reserved = reserved_by_lot(state, spender.at, exclude)
    return sum(lot.remaining - reserved.get(lot.id, 0) for lot in _spendable_lots(state, spender))


def spend_limits(state: OrgState, spender: Spender) -> list[tuple[SpendKey, MicroCredits, str]]:
    """The counters a spender's debits count against, with each one's limit and name: the team's
    budget and the user's cap, in the period holding the debit's time."""
    limits: list[tuple[SpendKey, MicroCredits, str]] = []
    budget = state.budgets.get(spender.team_id) if spender.team_id is not None else None
    if budget is not None:
        key = (team_scope(budget.team_id), period_start(spender.at, budget.period))
        limits.append((key, budget.amount, f"the team's {budget.period.value}ly budget"))
    member = state.members.get(spender.user_id) if spender.user_id is not None else None
    if member is not None and member.cap is not None:
        key = (user_scope(member.user_id), period_start(spender.at, member.period))
        limits.append((key, member.cap, f"the user's {member.period.value}ly cap"))
    return limits


def counted_keys(state: OrgState, spender: Spender) -> list[SpendKey]:
    """Every counter a past debit by this spender (at `spender.at`) counted on, as far as the state
    can tell: its budget and cap, and the spend alerts set by then."""
    keys = [key for key, _, _ in spend_limits(state, spender)]
    if state.alerts:
        keys += alerts.spend_counters(state, spender.at, spender.team_id, spender.user_id, counted_since=spender.at)
    return keys


def _counted_spend(state: OrgState, spender: Spender, amount: MicroCredits) -> dict[SpendKey, MicroCredits]:
    """New spend counters for the spender's team budget, user cap and spend alerts, or CapExceeded."""
    counted: dict[SpendKey, MicroCredits] = {}
    for key, limit, name in spend_limits(state, spender):
        spent = state.spend.get(key, 0) + amount
        if spent > limit:
            raise CapExceeded(f"{name} of {format_credits(limit)} credits")
        counted[key] = MicroCredits(spent)
    if state.alerts:
        for key in alerts.spend_counters(state, spender.at, spender.team_id, spender.user_id):
            # Budgets and caps bound their counters; an alert's has only the range.
            counted[key] = MicroCredits(state.spend.get(key, 0) + amount)
            bounds.within_sum(counted[key], "a spend alert's counter")
    return counted
