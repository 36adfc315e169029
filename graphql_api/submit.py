"""Handing the ledger a command: validate at the edge, append to the org's mailbox, and (with
`ack: APPLIED`) wait for the committed result."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from graphql_api.context import Context, Info
from graphql_api.errors import RefusedEvent, not_found
from graphql_api.inputs import parse_id
from graphql_api.outcomes import Ack, CommandOutcome
from ledger import constants
from ledger.core.commands import Command, Envelope, Payload
from ledger.core.errors import ErrorCode, InvalidCommand, error_for
from ledger.core.validation import validate
from ledger.stream.replies import Reply


async def submit(info: Info, organization_id: UUID, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    (outcome,) = await submit_many(info, [(organization_id, key, payload)], ack)
    return outcome


async def submit_to(info: Info, organization_id: str, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    """`submit` to an organization named by the id the client sent."""
    return await submit(info, parse_id(organization_id, "organizationId"), key, payload, ack)


async def submit_many(info: Info, items: Sequence[tuple[UUID, str, Payload]], ack: Ack) -> list[CommandOutcome]:
    """Validate every command, then queue them all (and with APPLIED wait for every result)."""
    command_ids, replies = await deliver(info.context, items, ack)
    if replies is None:
        return [CommandOutcome.queued(command_id) for command_id in command_ids]
    return [CommandOutcome.from_reply(reply) for reply in replies]


async def deliver(
    context: Context, items: Sequence[tuple[UUID, str, Payload]], ack: Ack
) -> tuple[list[UUID], list[Reply] | None]:
    """What `submit_many` does, for any way in: the organizations known (NOT_FOUND), every command
    valid (`RefusedEvent` naming the first that is not), then all queued: the command ids, and with
    APPLIED the worker's replies in request order."""
    resources = context.resources
    unknown = sorted(resources.organizations.unknown(org for org, _, _ in items))
    if unknown:
        found = await context.loaders.organization.load_many(unknown)
        if any(organization is None for organization in found):
            raise not_found("organization")
    mailbox = resources.mailbox
    received_at = datetime.now(UTC)
    reply_to = mailbox.reply_channel if ack is Ack.APPLIED else None
    commands = [
        Command(Envelope(uuid.uuid4(), organization_id, key, received_at, reply_to), payload)
        for organization_id, key, payload in items
    ]
    for index, command in enumerate(commands):
        try:
            validate(command)
        except InvalidCommand as error:
            raise RefusedEvent(index, error) from None
    if ack is Ack.QUEUED:
        await mailbox.send(commands)
        return [command.envelope.command_id for command in commands], None
    replies = await mailbox.send_and_wait(commands, constants.apply_wait_timeout_ms)
    if len(replies) == 1 and replies[0].result.code == ErrorCode.IDEMPOTENCY_CONFLICT:
        # A single request reused a key: that is the request's error, not a ledger decision.
        result = replies[0].result
        raise error_for(ErrorCode.IDEMPOTENCY_CONFLICT, result.message or "idempotency key reused with another payload")
    return [command.envelope.command_id for command in commands], replies
