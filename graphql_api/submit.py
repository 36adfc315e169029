"""Handing the ledger a command: validate at the edge, append to the org's mailbox, and (with
`ack: APPLIED`) wait for the committed result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.types import Ack, CommandOutcome, load_organization
from ledger import constants
from ledger.core.commands import Command, Envelope, Payload, validate
from ledger.core.errors import IdempotencyConflict


async def submit(info: Info, organization_id: UUID, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    await load_organization(info, organization_id)
    mailbox = info.context.resources.mailbox
    command = Command(
        Envelope(
            command_id=uuid.uuid4(),
            organization_id=organization_id,
            idempotency_key=key,
            received_at=datetime.now(UTC),
            reply_to=mailbox.reply_channel if ack is Ack.APPLIED else None,
        ),
        payload,
    )
    validate(command)
    if ack is Ack.QUEUED:
        await mailbox.send([command])
        return CommandOutcome.queued(command.envelope.command_id)
    (reply,) = await mailbox.send_and_wait([command], constants.apply_wait_timeout_ms)
    if reply.result.code == IdempotencyConflict.code:
        raise IdempotencyConflict(reply.result.message or "idempotency key reused with another payload")
    return CommandOutcome.from_reply(reply)


def aware(value: datetime | None, field: str) -> datetime | None:
    """Times must say their offset: a naive time would be read in whatever zone the server runs."""
    if value is not None and value.tzinfo is None:
        raise invalid(f"{field} needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
    return value


def required_time(value: datetime, field: str) -> datetime:
    checked = aware(value, field)
    assert checked is not None
    return checked
