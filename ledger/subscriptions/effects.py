"""Billing's effects on the ledger: commands sent to an organization's actor, in order, and their
committed results awaited.

Every error from sending (`Unavailable`, `Overloaded`, `ResultTimeout`) leaves the effects to be
sent again under the same idempotency keys: the ledger applies a key once, and a repeat answers
with the first result.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ledger import constants
from ledger.core.commands import Command, Envelope, Payload
from ledger.core.errors import Overloaded, ResultTimeout, Unavailable
from ledger.core.validation import validate
from ledger.stream.mailbox import Mailbox
from ledger.stream.replies import Reply

# What sending may raise that a later try under the same keys can cure.
RETRYABLE: tuple[type[Exception], ...] = (Unavailable, Overloaded, ResultTimeout)


@dataclass(frozen=True, slots=True)
class LedgerEffect:
    idempotency_key: str
    payload: Payload
    received_at: datetime


class Effects(Protocol):
    async def apply(self, organization_id: UUID, effects: Sequence[LedgerEffect]) -> list[Reply]:
        """Send the effects to the organization's actor in order; their results, in order."""
        ...


class LedgerEffects:
    """Effects through a mailbox that can wait (one made with a `PubSubHub`, and started)."""

    def __init__(self, mailbox: Mailbox, timeout_ms: int = constants.apply_wait_timeout_ms) -> None:
        self._mailbox = mailbox
        self._timeout_ms = timeout_ms

    async def apply(self, organization_id: UUID, effects: Sequence[LedgerEffect]) -> list[Reply]:
        if not effects:
            return []
        reply_to = self._mailbox.reply_channel
        commands = [
            Command(Envelope(uuid.uuid4(), organization_id, e.idempotency_key, e.received_at, reply_to), e.payload)
            for e in effects
        ]
        for command in commands:
            validate(command)
        return await self._mailbox.send_and_wait(commands, self._timeout_ms)


def effects_of(target: Effects | Mailbox) -> Effects:
    """The effects a caller passed, or effects through its mailbox."""
    return LedgerEffects(target) if isinstance(target, Mailbox) else target
