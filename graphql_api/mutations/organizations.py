"""Creating organizations and teams: written at once (they are the directory, not the ledger),
idempotent by the id the caller may choose."""

from __future__ import annotations

import uuid

import asyncpg
import strawberry

from graphql_api.access.authorize import Authorize, authorize, nowhere
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.errors import ApiError
from graphql_api.input_types.organizations import CreateOrganizationInput, CreateTeamInput
from graphql_api.inputs import (
    checked_name,
    load_organization,
    parse_id,
)
from graphql_api.types.organization import Organization
from graphql_api.types.teams import Team
from ledger.core.errors import ErrorCode
from ledger.store.organizations import create_organization, organizations_by_ids
from ledger.store.teams import create_team, team


@strawberry.type
class OrganizationMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.CREATE_ORGANIZATION, nowhere)], description="Create an organization."
    )
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> Organization:
        name = checked_name(input.name)
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
        name = checked_name(input.name)
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
