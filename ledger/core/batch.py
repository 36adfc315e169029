"""Applying a batch of commands in order, once per idempotency key.

The store tells which keys it already holds; keys seen earlier in the same batch count too. A repeat
with the same fingerprint replays the stored result and writes nothing; a repeat with another
fingerprint is an idempotency conflict, also written nowhere (the key belongs to the first payload).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from ledger.core.apply import apply
from ledger.core.commands import Command
from ledger.core.entries import Applied, Result, Status
from ledger.core.errors import IdempotencyConflict
from ledger.core.state import OrgState
from ledger.core.wire import canonical_json, fingerprint

IdempotencyKey = tuple[UUID, str]


@dataclass(frozen=True, slots=True)
class Stored:
    """What the journal already holds for an idempotency key."""

    command_id: UUID
    fingerprint: str
    result: Result


@dataclass(frozen=True, slots=True)
class Outcome:
    command: Command
    fingerprint: str
    result: Result
    # Set only when this command is new and must be journaled.
    applied: Applied | None
    # The command whose effect this result reports (the first with the key).
    transaction_id: UUID
    # The payload as the journal stores it (computed once, for the fingerprint too).
    payload_json: str


def apply_batch(
    states: Mapping[UUID, OrgState],
    commands: Iterable[Command],
    stored: Mapping[IdempotencyKey, Stored],
) -> tuple[list[Outcome], dict[UUID, OrgState]]:
    """Apply commands in order; return an outcome per command and the states after the batch.

    `states` holds the state of every organization the commands name."""
    current = dict(states)
    seen: dict[IdempotencyKey, Stored] = dict(stored)
    outcomes: list[Outcome] = []
    for command in commands:
        org = command.organization_id
        key = (org, command.idempotency_key)
        text = canonical_json(command.payload)
        digest = fingerprint(command.payload, text)
        previous = seen.get(key)
        if previous is not None:
            result = previous.result if previous.fingerprint == digest else _conflict(previous)
            outcomes.append(Outcome(command, digest, result, None, previous.command_id, text))
            continue
        applied = apply(current[org], command)
        current[org] = applied.state
        seen[key] = Stored(command.envelope.command_id, digest, applied.result)
        outcomes.append(Outcome(command, digest, applied.result, applied, command.envelope.command_id, text))
    return outcomes, current


def _conflict(previous: Stored) -> Result:
    error = IdempotencyConflict(f"idempotency key already used for another request (transaction {previous.command_id})")
    return Result(Status.REJECTED, code=error.code, message=error.message)
