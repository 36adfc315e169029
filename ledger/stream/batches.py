"""A batch as the worker prepares it: its entries, the states it started from, what applying it
produced, and the states it ends with; and the pure steps of preparing one (applying in slices
that yield to the event loop, and naming the products whose catalog rates the batch needs).

Reading what a batch needs and writing it are the worker's (`ledger.stream.worker`); what follows
the commit is `ledger.stream.acknowledgement`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from ledger import constants
from ledger.core.batch import IdempotencyKey, Outcome, Stored, apply_batch
from ledger.core.commands import Command
from ledger.core.references import references
from ledger.core.state import OrgState
from ledger.stream.inbox import Entry


@dataclass(frozen=True, slots=True)
class Prepared:
    entries: Sequence[Entry]
    partitions: set[int]
    initial: dict[UUID, OrgState]
    outcomes: list[Outcome]
    final: dict[UUID, OrgState]
    # The idempotency keys it applied (`new_keys` of its outcomes), for the next batch to see.
    keys: dict[IdempotencyKey, Stored] = field(default_factory=dict)
    # The fencing token it commits under per partition, and the worker's sequence number for it
    # (growing in commit order): with the token, its snapshots' version (`ledger.stream.feeds`).
    tokens: dict[int, int] = field(default_factory=dict)
    sequence: int = 0

    @classmethod
    def of_entries(cls, entries: Sequence[Entry]) -> Prepared:
        """A batch that applies nothing: its entries are only to be acknowledged (and any set
        aside dead-lettered)."""
        return cls(entries, {entry.partition for entry in entries}, {}, [], {})


async def apply_in_slices(
    states: dict[UUID, OrgState], commands: list[Command], stored: dict[IdempotencyKey, Stored]
) -> tuple[list[Outcome], dict[UUID, OrgState], dict[IdempotencyKey, Stored]]:
    """`apply_batch`, a slice at a time, yielding to the event loop in between so the batch in
    flight can make progress with PostgreSQL meanwhile; also returns the keys it applied."""
    outcomes: list[Outcome] = []
    current = states
    seen = dict(stored)
    added: dict[IdempotencyKey, Stored] = {}
    for start in range(0, len(commands), constants.apply_slice_commands):
        if start:
            await asyncio.sleep(0)
        sliced, current = apply_batch(current, commands[start : start + constants.apply_slice_commands], seen)
        keys = new_keys(sliced)
        seen.update(keys)
        added.update(keys)
        outcomes += sliced
    return outcomes, {**states, **current}, added


def new_keys(outcomes: Sequence[Outcome]) -> dict[IdempotencyKey, Stored]:
    """The idempotency keys the outcomes applied (not repeats), each with what a retry returns."""
    return {
        (o.command.organization_id, o.command.idempotency_key): Stored(o.transaction_id, o.fingerprint, o.result)
        for o in outcomes
        if o.applied is not None
    }


def priced_products(commands: Sequence[Command], states: Mapping[UUID, OrgState]) -> set[str]:
    """The products whose catalog rates the batch needs: those its commands name, and those of the
    holds they capture by quantity (a capture names the hold, the hold its product)."""
    products: set[str] = set()
    for command in commands:
        named = references(command)
        products |= named.products
        holds = states[command.organization_id].holds
        captured = (holds.get(hold_id) for hold_id in named.charged_holds)
        products.update(hold.product for hold in captured if hold is not None and hold.product is not None)
    return products
