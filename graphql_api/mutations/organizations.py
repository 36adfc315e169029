"""Creating organizations and teams: written at once by the directory (`ledger.directory`), not the
ledger, idempotent by the id the caller may choose."""

from __future__ import annotations

import uuid

import strawberry

from graphql_api.access.authorize import Authorize, authorize, nowhere
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.organizations import CreateOrganizationInput, CreateTeamInput
from graphql_api.inputs import (
    checked_name,
    load_organization,
    optional_id,
    parse_id,
)
from graphql_api.types.organization import Organization
from graphql_api.types.teams import Team
from ledger.directory import organizations, teams


@strawberry.type
class OrganizationMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.CREATE_ORGANIZATION, nowhere)], description="Create an organization."
    )
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> Organization:
        name = checked_name(input.name)
        organization_id = optional_id(input.id, "id") or uuid.uuid4()
        pool = info.context.resources.pool
        # A partner's organizations are its sub-organizations.
        partner_id = info.context.principal.partner_id
        created = await organizations.create_organization(pool, organization_id, name, partner_id)
        if created is not None:
            return Organization.from_domain(created)
        existing = (await organizations.organizations_by_ids(pool, [organization_id]))[organization_id]
        # A retry returns the organization only to whoever could read it: another tenant's id
        # is a refusal, never a way in (nor a conflict that confirms it exists).
        await authorize(info.context, Permission.READ, [organization_id])
        return Organization.from_domain(organizations.same_organization(existing, name, partner_id))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Create a team in an organization."
    )
    async def create_team(self, info: Info, input: CreateTeamInput) -> Team:
        name = checked_name(input.name)
        organization_id = parse_id(input.organization_id, "organizationId")
        await load_organization(info, organization_id)
        team_id = optional_id(input.id, "id") or uuid.uuid4()
        return Team.from_domain(await teams.create_team(info.context.resources.pool, organization_id, team_id, name))
