"""A command's effect under construction: lot movements, new lots and postings, built up step by
step and turned into an `Applied` at the end. Local and mutable; the states it yields are not."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from ledger.core.entries import LOT_ACCOUNT, Applied, Posting, Result, Status
from ledger.core.money import MicroCredits
from ledger.core.state import Lot, OrgState


class Change:
    def __init__(self, state: OrgState) -> None:
        self.state = state
        self._lots: dict[UUID, Lot] = {lot.id: lot for lot in state.lots}
        self._new: list[UUID] = []
        self._touched: list[UUID] = []
        self.postings: list[Posting] = []

    def lot(self, lot_id: UUID) -> Lot | None:
        return self._lots.get(lot_id)

    def lots(self) -> Iterable[Lot]:
        return self._lots.values()

    def post(self, account: str, amount: int, *, lot_id: UUID | None = None, hold_id: UUID | None = None) -> None:
        if amount != 0:
            self.postings.append(Posting(account, MicroCredits(amount), lot_id, hold_id))

    def move(self, lot_id: UUID, delta: int) -> None:
        """Change a lot's remaining by `delta`, with its posting."""
        if delta == 0:
            return
        lot = self._lots[lot_id]
        self._lots[lot_id] = lot.with_remaining(MicroCredits(lot.remaining + delta))
        if lot_id not in self._new and lot_id not in self._touched:
            self._touched.append(lot_id)
        self.post(LOT_ACCOUNT, delta, lot_id=lot_id)

    def add_lot(self, lot: Lot) -> None:
        """A new lot, funded by a posting of its whole amount; its `remaining` must equal its amount."""
        self._lots[lot.id] = lot
        self._new.append(lot.id)
        self.post(LOT_ACCOUNT, lot.amount, lot_id=lot.id)

    def replace_state(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]

    def applied(self, at: datetime, *, charged: int = 0, details: dict[str, str] | None = None) -> Applied:
        new_lots = tuple(self._lots[lot_id] for lot_id in self._new)
        touched = tuple(self._lots[lot_id] for lot_id in self._touched)
        # `_lots` holds the state's lots in their order, moved ones in place, then the new ones:
        # the state's next lots as they are (no command but this one replaces the lots).
        state = self.state.with_lots(self._lots.values()) if new_lots or touched else self.state
        result = Result(
            Status.ACCEPTED,
            credits_charged=MicroCredits(charged),
            balance_after=state.balance(at).total,
            details=details or {},
        )
        return Applied(state, tuple(self.postings), result, new_lots=new_lots, touched_lots=touched)
