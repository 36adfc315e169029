"""Handing the ledger a command: validate at the edge, append to the org's mailbox, and (with
`ack: APPLIED`) wait for the committed result."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from graphql_api.context import Info
from graphql_api.errors import not_found
from graphql_api.inputs import parse_id
from graphql_api.outcomes import Ack, CommandOutcome
from ledger import constants
from ledger.core.commands import Command, Envelope, Payload
from ledger.core.errors import ErrorCode, error_for
from ledger.core.validation import validate


async def submit(info: Info, organization_id: UUID, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    (outcome,) = await submit_many(info, [(organization_id, key, payload)], ack)
    return outcome


async def submit_to(info: Info, organization_id: str, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    """`submit` to an organization named by the id the client sent."""
    return await submit(info, parse_id(organization_id, "organizationId"), key, payload, ack)


async def submit_many(info: Info, items: Sequence[tuple[UUID, str, Payload]], ack: Ack) -> list[CommandOutcome]:
    """Validate every command, then queue them all (and with APPLIED wait for every result)."""
    resources = info.context.resources
    unknown = sorted(resources.known_organizations.unknown(org for org, _, _ in items))
    if unknown:
        found = await info.context.loaders.organization.load_many(unknown)
        if any(organization is None for organization in found):
            raise not_found("organization")
        resources.known_organizations.add(unknown)
    mailbox = resources.mailbox
    received_at = datetime.now(UTC)
    reply_to = mailbox.reply_channel if ack is Ack.APPLIED else None
    commands = [
        Command(Envelope(uuid.uuid4(), organization_id, key, received_at, reply_to), payload)
        for organization_id, key, payload in items
    ]
    for command in commands:
        validate(command)
    if ack is Ack.QUEUED:
        await mailbox.send(commands)
        return [CommandOutcome.queued(command.envelope.command_id) for command in commands]
    replies = await mailbox.send_and_wait(commands, constants.apply_wait_timeout_ms)
    if len(replies) == 1 and replies[0].result.code == ErrorCode.IDEMPOTENCY_CONFLICT:
        # A single request reused a key: that is the request's error, not a ledger decision.
        result = replies[0].result
        raise error_for(ErrorCode.IDEMPOTENCY_CONFLICT, result.message or "idempotency key reused with another payload")
    return [CommandOutcome.from_reply(reply) for reply in replies]
