"""Organization states kept warm in a ledger worker between batches.

A worker is the only writer of the organizations in its partitions, so once a batch commits, the
states it computed are exactly what PostgreSQL holds, and the next batch can start from them with
no reads. A warm state is trimmed to what a fresh load would hold (live lots, open holds, unused
quotes). A command that names something outside it (a spent lot to refund, a closed hold, a team
created since, a debit to credit back) sends its organization back to a fresh load for that batch.

What is warm is dropped whenever it might differ from the database: when a commit fails or its
outcome is unknown, and when the worker gains or loses the organization's partition.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from ledger.core.commands import Command
from ledger.core.references import References, references
from ledger.core.state import HoldStatus, OrgState
from ledger.stream.keys import partition_of


def event_time(command: Command) -> datetime:
    """The earliest time a command may count spending at."""
    return references(command).reads_from


def covers(state: OrgState, command: Command) -> bool:
    """Whether the warm state holds everything `command` may read."""
    return _holds_all(state, references(command))


def _holds_all(state: OrgState, named: References) -> bool:
    if named.debits:
        return False  # a debit is read from the journal
    return (
        named.teams <= state.teams
        and named.quotes <= state.quotes.keys()
        and named.holds <= state.holds.keys()
        and all(any(lot.id == lot_id for lot in state.lots) for lot_id in named.lots)
    )


def trim(state: OrgState) -> OrgState:
    """Drop what a fresh load would not hold, so a long-lived state does not grow."""
    changes: dict[str, object] = {}
    if any(lot.remaining <= 0 for lot in state.lots):
        changes["lots"] = tuple(lot for lot in state.lots if lot.remaining > 0)
    if any(hold.status is not HoldStatus.OPEN for hold in state.holds.values()):
        changes["holds"] = {i: h for i, h in state.holds.items() if h.status is HoldStatus.OPEN}
    if any(quote.used_by is not None for quote in state.quotes.values()):
        changes["quotes"] = {i: q for i, q in state.quotes.items() if q.used_by is None}
    if state.debits:
        changes["debits"] = {}
    return replace(state, **changes) if changes else state  # type: ignore[arg-type]


class WarmStates:
    """A bounded map of organization → committed state, least recently used evicted first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._states: OrderedDict[UUID, OrgState] = OrderedDict()
        # Spend counters were loaded for periods from this time on; earlier events need a reload.
        self._loaded_from: dict[UUID, datetime] = {}

    def __len__(self) -> int:
        return len(self._states)

    def usable(self, org_id: UUID, commands: Iterable[Command]) -> OrgState | None:
        """The warm state, if it serves every one of these commands of the organization."""
        state = self._states.get(org_id)
        if state is None:
            return None
        loaded_from = self._loaded_from[org_id]
        named = (references(c) for c in commands)  # once per command: every batch asks, for each
        if all(_holds_all(state, n) and n.reads_from >= loaded_from for n in named):
            self._states.move_to_end(org_id)
            return state
        return None

    def keep(self, states: Mapping[UUID, OrgState], loaded_from: Mapping[UUID, datetime]) -> None:
        """Keep the states a batch committed; `loaded_from` names those freshly loaded for it."""
        for org_id, state in states.items():
            self._states[org_id] = trim(state)
            self._states.move_to_end(org_id)
            if org_id in loaded_from:
                self._loaded_from[org_id] = loaded_from[org_id]
        while len(self._states) > self._capacity:
            evicted, _ = self._states.popitem(last=False)
            del self._loaded_from[evicted]

    def drop(self, org_ids: Iterable[UUID]) -> None:
        for org_id in org_ids:
            if self._states.pop(org_id, None) is not None:
                del self._loaded_from[org_id]

    def drop_partitions(self, partitions: set[int], partition_count: int) -> None:
        if partitions:
            self.drop([org for org in self._states if partition_of(org, partition_count) in partitions])

    def clear(self) -> None:
        self._states.clear()
        self._loaded_from.clear()
