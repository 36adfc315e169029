"""Mutations for organizations, teams, grants and usage: validate at the edge, then hand the
ledger a command and (optionally) wait for it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg
import strawberry

from graphql_api.access.authorize import Authorize, authorize, batch_organizations, nowhere
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.errors import ApiError, invalid
from graphql_api.ids import parse_id
from graphql_api.scalars import Credits, Quantity
from graphql_api.submit import aware, submit, submit_many
from graphql_api.types import Ack, CommandOutcome, Organization, Team, load_organization
from ledger import constants
from ledger.core import bounds
from ledger.core.commands import (
    GrantCredits,
    LotKind,
    LotSource,
    LotTerms,
    RecordUsage,
    RevenueTreatment,
    RolloverRule,
)
from ledger.core.errors import ErrorCode, UnknownProduct
from ledger.core.money import MicroCredits, price
from ledger.store import catalog
from ledger.store.organizations import create_organization, organizations_by_ids
from ledger.store.teams import create_team, team

NAME_LENGTH_MAX = 200

strawberry.enum(LotSource, name="LotSource", description="Where a lot's credits came from.")
strawberry.enum(RevenueTreatment, name="RevenueTreatment", description="How finance recognizes a lot's revenue.")


@strawberry.input(description="A new organization.")
class CreateOrganizationInput:
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Choose the id (a UUID) to make creation idempotent: a retry returns the same organization.",
    )


@strawberry.input(description="A new team (workspace) in an organization.")
class CreateTeamInput:
    organization_id: strawberry.ID
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    id: strawberry.ID | None = strawberry.field(default=None, description="Choose the id to make creation idempotent.")


@strawberry.input(description="Unused credits roll into a bank lot when this lot ends (ACT3's rollover bank).")
class RolloverInput:
    cap: Credits = strawberry.field(description="Most the bank may hold, e.g. 66000 on Creator.")
    cycles: int = strawberry.field(description="Calendar months a banked amount lasts, e.g. 6.")


@strawberry.input(description="Credits to add as a new lot.")
class GrantCreditsInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description="Positive amount of credits.")
    idempotency_key: str = strawberry.field(description="Your unique key for this grant; a retry with it applies once.")
    kind: LotKind = strawberry.field(default=LotKind.BASE, description="Lot kind; sets the default priority.")
    priority: int | None = strawberry.field(default=None, description="Lower is consumed first; defaults by kind.")
    effective_at: datetime | None = strawberry.field(default=None, description="When it becomes usable (default now).")
    expires_at: datetime | None = strawberry.field(default=None, description="When it expires (default never).")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="Give it to a team, not the pool.")
    products: list[str] | None = strawberry.field(default=None, description="Only these products (default all).")
    rollover: RolloverInput | None = strawberry.field(default=None, description="Bank what is left when it ends.")
    source: LotSource = LotSource.MANUAL
    refundable: bool = False
    revenue_treatment: RevenueTreatment = RevenueTreatment.DEFERRED
    price_per_credit: Quantity | None = strawberry.field(default=None, description="Cost basis: money per credit.")
    currency: str | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A dimension of a usage event, e.g. model = gpt-4o.")
class DimensionInput:
    name: str
    value: str


@strawberry.input(description="One usage event, priced through the rate card and debited from the lots.")
class UsageEventInput:
    organization_id: strawberry.ID
    product: str = strawberry.field(description="The product key on the rate card.")
    quantity: Quantity = strawberry.field(description="Positive quantity in the product's unit.")
    idempotency_key: str = strawberry.field(description="Your unique id for this event; a retry charges once.")
    occurred_at: datetime | None = strawberry.field(default=None, description="When it happened (default now).")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="The team using it: its lots first.")
    user_id: str | None = strawberry.field(default=None, description="Your id of the user; their cap applies.")
    quote_id: strawberry.ID | None = strawberry.field(default=None, description="Charge a binding quote's price.")
    dimensions: list[DimensionInput] = strawberry.field(default_factory=list, description="For usage reports.")


@strawberry.input(description="One usage event, priced through the rate card and debited from the lots.")
class RecordUsageInput(UsageEventInput):
    ack: Ack = Ack.APPLIED


@strawberry.input(description=f"Up to {constants.usage_batch_max} usage events, for one or many organizations.")
class RecordUsageBatchInput:
    events: list[UsageEventInput] = strawberry.field(description="Applied in this order within each organization.")
    ack: Ack = strawberry.field(default=Ack.QUEUED, description="QUEUED (default) answers once all are durably queued.")


def optional_id(value: strawberry.ID | None, what: str) -> uuid.UUID | None:
    return None if value is None else parse_id(value, what)


async def require_product(info: Info, product: str) -> None:
    await require_products(info, {product})


async def require_products(info: Info, products: set[str]) -> None:
    known = info.context.resources.known_products
    unknown = known.unknown(products)
    if not unknown:
        return
    found = await catalog.rates_for(info.context.resources.pool, unknown)
    known.add({product: rate.credits_per_unit for product, rate in found.items()})
    if unknown - found.keys():
        raise UnknownProduct(f"no rate for product {min(unknown - found.keys())!r}")


def require_priceable(info: Info, product: str, quantity: Decimal) -> None:
    """Refuse, before it is queued, a quantity whose price at the catalog's rate would pass the
    ledger's range (the actor judges the rate in force, perhaps the org's own, again)."""
    rate = info.context.resources.known_products.get(product)
    if rate is not None and price(quantity, rate) > bounds.CREDITS_MAX:
        raise invalid(f"{quantity} units of {product!r} would cost more than {bounds.CREDITS_MAX_WHOLE:,} credits")


def usage_payload(info: Info, event: UsageEventInput) -> RecordUsage:
    dimensions = {d.name: d.value for d in event.dimensions}
    if len(dimensions) != len(event.dimensions):
        raise invalid("dimension names must be unique")
    require_priceable(info, event.product, Decimal(event.quantity))
    return RecordUsage(
        product=event.product,
        quantity=Decimal(event.quantity),
        occurred_at=aware(event.occurred_at, "occurredAt"),
        team_id=optional_id(event.team_id, "teamId"),
        user_id=event.user_id,
        quote_id=optional_id(event.quote_id, "quoteId"),
        dimensions=dimensions,
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=[Authorize(Permission.CREATE_ORGANIZATION, nowhere)], description="Create an organization."
    )
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> Organization:
        name = input.name.strip()
        if not 1 <= len(name) <= NAME_LENGTH_MAX:
            raise invalid(f"name must be 1 to {NAME_LENGTH_MAX} characters")
        organization_id = parse_id(input.id, "id") if input.id is not None else uuid.uuid4()
        pool = info.context.resources.pool
        # A partner's organizations are its sub-organizations.
        partner_id = info.context.principal.partner_id
        try:
            return Organization.from_domain(await create_organization(pool, organization_id, name, partner_id))
        except asyncpg.UniqueViolationError:
            existing = (await organizations_by_ids(pool, [organization_id]))[organization_id]
            # A retry returns the organization only to whoever could read it: another tenant's id
            # is a conflict, never a way in.
            await authorize(info.context, Permission.READ, [organization_id])
            if existing.name != name or existing.partner_id != partner_id:
                raise ApiError(
                    ErrorCode.IDEMPOTENCY_CONFLICT, "an organization with this id exists with another name"
                ) from None
            return Organization.from_domain(existing)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Create a team in an organization."
    )
    async def create_team(self, info: Info, input: CreateTeamInput) -> Team:
        name = input.name.strip()
        if not 1 <= len(name) <= NAME_LENGTH_MAX:
            raise invalid(f"name must be 1 to {NAME_LENGTH_MAX} characters")
        organization_id = parse_id(input.organization_id, "organizationId")
        await load_organization(info, organization_id)
        team_id = parse_id(input.id, "id") if input.id is not None else uuid.uuid4()
        pool = info.context.resources.pool
        created = await create_team(pool, organization_id, team_id, name)
        if created is not None:
            return Team.from_domain(created)
        existing = await team(pool, organization_id, team_id)
        if existing is None or existing.name != name:
            raise ApiError(ErrorCode.IDEMPOTENCY_CONFLICT, "a team with this id exists with another name")
        return Team.from_domain(existing)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description="Grant credits to an organization (or one of its teams) as a new credit lot.",
    )
    async def grant_credits(self, info: Info, input: GrantCreditsInput) -> CommandOutcome:
        payload = GrantCredits(
            amount=MicroCredits(input.amount),
            kind=input.kind,
            priority=input.priority,
            effective_at=aware(input.effective_at, "effectiveAt"),
            expires_at=aware(input.expires_at, "expiresAt"),
            team_id=optional_id(input.team_id, "teamId"),
            products=None if input.products is None else frozenset(input.products),
            rollover=None
            if input.rollover is None
            else RolloverRule(MicroCredits(input.rollover.cap), input.rollover.cycles),
            terms=LotTerms(
                source=input.source,
                refundable=input.refundable,
                revenue_treatment=input.revenue_treatment,
                price_per_credit=None if input.price_per_credit is None else Decimal(input.price_per_credit),
                currency=input.currency,
            ),
        )
        organization_id = parse_id(input.organization_id, "organizationId")
        return await submit(info, organization_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE)],
        description="Record one usage event: priced, then debited in consumption order.",
    )
    async def record_usage(self, info: Info, input: RecordUsageInput) -> CommandOutcome:
        organization_id = parse_id(input.organization_id, "organizationId")
        await require_product(info, input.product)
        return await submit(info, organization_id, input.idempotency_key, usage_payload(info, input), input.ack)

    @strawberry.mutation(
        extensions=[Authorize(Permission.RECORD_USAGE, batch_organizations)],
        description=(
            "Record many usage events in one request, each with its own idempotency key. All are checked "
            "first: one bad event rejects the request and queues nothing."
        ),
    )
    async def record_usage_batch(self, info: Info, input: RecordUsageBatchInput) -> list[CommandOutcome]:
        if not 1 <= len(input.events) <= constants.usage_batch_max:
            raise invalid(f"events must hold 1 to {constants.usage_batch_max} usage events")
        await require_products(info, {event.product for event in input.events})
        items = [
            (parse_id(event.organization_id, "organizationId"), event.idempotency_key, usage_payload(info, event))
            for event in input.events
        ]
        return await submit_many(info, items, input.ack)
