"""The pure step of an organization's actor: `apply(state, command) -> Applied`.

Deterministic: ids of new lots derive from the command id, and time comes from the command. A
rejected command changes nothing and produces no postings; its result is still recorded so that a
retry of the same key returns the same answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from ledger.core.commands import DEFAULT_PRIORITY, Command, ExpireLots, GrantCredits, RecordUsage
from ledger.core.errors import InsufficientCredits, LedgerError, UnknownProduct
from ledger.core.money import MicroCredits, format_credits, price
from ledger.core.state import Lot, OrgState

_LOT_NAMESPACE = UUID("5f0c1a52-8d7e-4b8f-9a51-3e2f0d6c9b10")

ISSUANCE_ACCOUNT = "issuance"
LOT_ACCOUNT = "lot"
USAGE_ACCOUNT = "usage"
BREAKAGE_ACCOUNT = "breakage"


ZERO = MicroCredits(0)


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction. Amounts are signed and sum to zero across a transaction."""

    account: str
    amount: MicroCredits
    lot_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    credits_charged: MicroCredits = ZERO
    balance_after: MicroCredits = ZERO
    code: str | None = None
    message: str | None = None


def result_to_dict(result: Result) -> dict[str, object]:
    return {
        "status": result.status.value,
        "credits_charged": result.credits_charged,
        "balance_after": result.balance_after,
        "code": result.code,
        "message": result.message,
    }


def result_from_dict(data: Mapping[str, Any]) -> Result:
    return Result(
        status=Status(data["status"]),
        credits_charged=MicroCredits(int(data["credits_charged"])),
        balance_after=MicroCredits(int(data["balance_after"])),
        code=data["code"],
        message=data["message"],
    )


@dataclass(frozen=True, slots=True)
class Applied:
    state: OrgState
    postings: tuple[Posting, ...]
    result: Result
    new_lots: tuple[Lot, ...] = ()
    touched_lots: tuple[Lot, ...] = ()


def apply(state: OrgState, command: Command) -> Applied:
    try:
        payload = command.payload
        if isinstance(payload, GrantCredits):
            return _grant(state, command, payload)
        if isinstance(payload, ExpireLots):
            return _expire(state, payload)
        return _record_usage(state, command, payload)
    except LedgerError as error:
        at = command.envelope.received_at
        rejected = Result(
            Status.REJECTED, balance_after=state.balance(at).total, code=error.code, message=error.message
        )
        return Applied(state=state, postings=(), result=rejected)


def _grant(state: OrgState, command: Command, grant: GrantCredits) -> Applied:
    at = command.envelope.received_at
    lot = Lot(
        id=uuid.uuid5(_LOT_NAMESPACE, f"{command.envelope.command_id}:0"),
        kind=grant.kind,
        amount=grant.amount,
        remaining=grant.amount,
        priority=DEFAULT_PRIORITY[grant.kind] if grant.priority is None else grant.priority,
        effective_at=grant.effective_at or at,
        expires_at=grant.expires_at,
        created_at=at,
    )
    new_state = state.with_lots((*state.lots, lot))
    postings = (
        Posting(f"{ISSUANCE_ACCOUNT}:{grant.kind.value}", MicroCredits(-grant.amount)),
        Posting(LOT_ACCOUNT, grant.amount, lot.id),
    )
    result = Result(Status.ACCEPTED, balance_after=new_state.balance(at).total)
    return Applied(new_state, postings, result, new_lots=(lot,))


def _record_usage(state: OrgState, command: Command, usage: RecordUsage) -> Applied:
    rate = state.rate_card.get(usage.product)
    if rate is None:
        raise UnknownProduct(f"no rate for product {usage.product!r}")
    charge = price(usage.quantity, rate.credits_per_unit)
    # Lots are judged at the time the usage happened, so late events use the credits valid then.
    at = usage.occurred_at or command.envelope.received_at
    takes = _allocate(state.lots, charge, at)
    taken = {lot_id: amount for lot_id, amount in takes}
    touched = tuple(
        replace(lot, remaining=MicroCredits(lot.remaining - taken[lot.id])) for lot in state.lots if lot.id in taken
    )
    new_state = state.with_updated_lots(touched)
    postings = (
        *(Posting(LOT_ACCOUNT, MicroCredits(-amount), lot_id) for lot_id, amount in takes),
        Posting(f"{USAGE_ACCOUNT}:{usage.product}", charge),
    )
    result = Result(Status.ACCEPTED, credits_charged=charge, balance_after=new_state.balance(at).total)
    return Applied(new_state, postings, result, touched_lots=touched)


def _expire(state: OrgState, expire: ExpireLots) -> Applied:
    """Breakage: the unused remainder of each expired lot leaves the org for the breakage account."""
    due = tuple(
        lot for lot in state.lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= expire.as_of
    )
    postings: list[Posting] = []
    for lot in due:
        postings.append(Posting(LOT_ACCOUNT, MicroCredits(-lot.remaining), lot.id))
        postings.append(Posting(f"{BREAKAGE_ACCOUNT}:{lot.kind.value}", lot.remaining))
    touched = tuple(replace(lot, remaining=ZERO) for lot in due)
    new_state = state.with_updated_lots(touched)
    result = Result(Status.ACCEPTED, balance_after=new_state.balance(expire.as_of).total)
    return Applied(new_state, tuple(postings), result, touched_lots=touched)


def _allocate(lots: tuple[Lot, ...], charge: MicroCredits, at: datetime) -> list[tuple[UUID, int]]:
    """Take `charge` from usable lots in consumption order, or refuse the whole of it."""
    takes: list[tuple[UUID, int]] = []
    left = charge
    for lot in sorted((lot for lot in lots if lot.usable_at(at)), key=Lot.consumption_key):
        if left == 0:
            break
        take = min(lot.remaining, left)
        takes.append((lot.id, take))
        left = MicroCredits(left - take)
    if left > 0:
        raise InsufficientCredits(f"short by {format_credits(left)} credits")
    return takes
