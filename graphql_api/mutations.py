"""Mutations: validate at the edge, then hand the ledger a command and (optionally) wait for it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
import strawberry

from graphql_api.context import Info
from graphql_api.errors import ApiError, invalid
from graphql_api.ids import parse_id
from graphql_api.scalars import Credits, Quantity
from graphql_api.types import Ack, CommandOutcome, Organization, load_organization
from ledger import constants
from ledger.core.commands import Command, Envelope, GrantCredits, LotKind, Payload, RecordUsage, validate
from ledger.core.errors import IdempotencyConflict, UnknownProduct
from ledger.core.money import MicroCredits
from ledger.store import catalog
from ledger.store.organizations import create_organization, organizations_by_ids

NAME_LENGTH_MAX = 200


@strawberry.input(description="A new organization.")
class CreateOrganizationInput:
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Choose the id (a UUID) to make creation idempotent: a retry returns the same organization.",
    )


@strawberry.input(description="Credits to add as a new lot.")
class GrantCreditsInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description="Positive amount of credits.")
    idempotency_key: str = strawberry.field(description="Your unique key for this grant; a retry with it applies once.")
    kind: LotKind = strawberry.field(default=LotKind.BASE, description="Lot kind; sets the default priority.")
    priority: int | None = strawberry.field(default=None, description="Lower is consumed first; defaults by kind.")
    effective_at: datetime | None = strawberry.field(default=None, description="When it becomes usable (default now).")
    expires_at: datetime | None = strawberry.field(default=None, description="When it expires (default never).")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="One usage event, priced through the rate card and debited from the lots.")
class RecordUsageInput:
    organization_id: strawberry.ID
    product: str = strawberry.field(description="The product key on the rate card.")
    quantity: Quantity = strawberry.field(description="Positive quantity in the product's unit.")
    idempotency_key: str = strawberry.field(description="Your unique id for this event; a retry charges once.")
    occurred_at: datetime | None = strawberry.field(default=None, description="When it happened (default now).")
    ack: Ack = Ack.APPLIED


async def _submit(info: Info, organization_id: UUID, key: str, payload: Payload, ack: Ack) -> CommandOutcome:
    await load_organization(info, organization_id)
    command = Command(
        Envelope(
            command_id=uuid.uuid4(),
            organization_id=organization_id,
            idempotency_key=key,
            received_at=datetime.now(UTC),
            reply_to=info.context.resources.mailbox.reply_channel if ack is Ack.APPLIED else None,
        ),
        payload,
    )
    validate(command)
    mailbox = info.context.resources.mailbox
    if ack is Ack.QUEUED:
        await mailbox.send([command])
        return CommandOutcome.queued(command.envelope.command_id)
    (reply,) = await mailbox.send_and_wait([command], constants.apply_wait_timeout_ms)
    if reply.result.code == IdempotencyConflict.code:
        raise IdempotencyConflict(reply.result.message or "idempotency key reused with another payload")
    return CommandOutcome.from_reply(reply)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(f"{field} needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
    return value


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an organization.")
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> Organization:
        name = input.name.strip()
        if not 1 <= len(name) <= NAME_LENGTH_MAX:
            raise invalid(f"name must be 1 to {NAME_LENGTH_MAX} characters")
        organization_id = parse_id(input.id, "id") if input.id is not None else uuid.uuid4()
        pool = info.context.resources.pool
        try:
            return Organization.from_domain(await create_organization(pool, organization_id, name))
        except asyncpg.UniqueViolationError:
            existing = (await organizations_by_ids(pool, [organization_id]))[organization_id]
            if existing.name != name:
                raise ApiError(
                    "IDEMPOTENCY_CONFLICT", "an organization with this id exists with another name"
                ) from None
            return Organization.from_domain(existing)

    @strawberry.mutation(description="Grant credits to an organization as a new credit lot.")
    async def grant_credits(self, info: Info, input: GrantCreditsInput) -> CommandOutcome:
        payload = GrantCredits(
            amount=MicroCredits(input.amount),
            kind=input.kind,
            priority=input.priority,
            effective_at=_aware(input.effective_at, "effectiveAt"),
            expires_at=_aware(input.expires_at, "expiresAt"),
        )
        organization_id = parse_id(input.organization_id, "organizationId")
        return await _submit(info, organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(description="Record one usage event: priced, then debited in consumption order.")
    async def record_usage(self, info: Info, input: RecordUsageInput) -> CommandOutcome:
        organization_id = parse_id(input.organization_id, "organizationId")
        quantity = Decimal(input.quantity)
        if quantity <= 0:
            raise invalid("quantity must be positive")
        if input.product not in await catalog.rates_for(info.context.resources.pool, [input.product]):
            raise UnknownProduct(f"no rate for product {input.product!r}")
        payload = RecordUsage(
            product=input.product, quantity=quantity, occurred_at=_aware(input.occurred_at, "occurredAt")
        )
        return await _submit(info, organization_id, input.idempotency_key, payload, input.ack)
