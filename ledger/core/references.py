"""What a command touches: the lots, holds, quotes, debits, teams and products it names, and the
earliest time it reads from.

One answer, used wherever the question is asked: the state loader reads what the commands name
(`ledger.store.states`), the worker's warm state serves a command only if it holds all of it
(`ledger.stream.warm`), and the worker fetches the catalog's rates for what a batch prices
(`ledger.stream.batches`). A new payload type that names something says so here, once, the way
`ledger.core.apply` is the one table for applying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.core.commands import (
    CaptureHold,
    Command,
    CreditBack,
    IssueQuote,
    PlaceHold,
    RecordUsage,
    RefundLot,
    ReleaseHold,
)

# The payload fields that name a team (None: the organization's shared pool).
_TEAM_FIELDS = ("team_id", "from_team_id", "to_team_id")
_NONE: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class References:
    reads_from: datetime  # the earliest time the command may count spending at
    lots: frozenset[UUID] = _NONE  # a lot to refund (spent or not)
    holds: frozenset[UUID] = _NONE  # a hold to capture or release (open or not)
    # Holds charged against: the catalog's rate for each one's product is priced.
    charged_holds: frozenset[UUID] = _NONE
    quotes: frozenset[UUID] = _NONE  # a binding quote to charge
    debits: frozenset[UUID] = _NONE  # a journaled debit (its transaction) to credit back
    teams: frozenset[UUID] = _NONE
    products: frozenset[str] = frozenset()  # products the command prices or may price


def references(command: Command) -> References:
    """What `command` names, from its payload alone (a hold's product is the state's to say)."""
    p = command.payload
    teams = frozenset(team for name in _TEAM_FIELDS if (team := getattr(p, name, None)) is not None)
    match p:
        case RecordUsage():
            reads_from = command.at if p.occurred_at is None else min(p.occurred_at, command.at)
            quotes = _NONE if p.quote_id is None else frozenset({p.quote_id})
            return References(reads_from, quotes=quotes, teams=teams, products=frozenset({p.product}))
        case IssueQuote() | PlaceHold():
            products = frozenset() if p.product is None else frozenset({p.product})
            return References(command.at, teams=teams, products=products)
        case CaptureHold():
            held = frozenset({p.hold_id})
            return References(command.at, holds=held, charged_holds=held, teams=teams)
        case ReleaseHold():
            return References(command.at, holds=frozenset({p.hold_id}), teams=teams)
        case RefundLot():
            return References(command.at, lots=frozenset({p.lot_id}), teams=teams)
        case CreditBack():
            return References(command.at, debits=frozenset({p.transaction_id}), teams=teams)
    return References(command.at, teams=teams)
