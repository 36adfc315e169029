"""Who is calling and with what: API keys (never their secrets), partners, user tokens, the viewer
and their memberships."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from graphql_api.context import Info
from graphql_api.enums import PrincipalKind, Role
from graphql_api.scalars import id_of
from ledger.directory.api_keys import ApiKey as DomainApiKey
from ledger.directory.members import memberships_of
from ledger.directory.partners import Partner as DomainPartner


@strawberry.enum(description="What an API key may reach.")
class ApiKeyScope(enum.Enum):
    ORGANIZATION = strawberry.enum_value("organization", description="One organization, with a role.")
    PARTNER = strawberry.enum_value("partner", description="A partner's own sub-organizations.")
    ADMIN = strawberry.enum_value("admin", description="The whole platform.")


@strawberry.type(description="An API key as stored: never its secret.")
class ApiKey:
    id: strawberry.ID
    prefix: str = strawberry.field(description="The key's first characters, to recognize it, e.g. cl_3kf9a2xq.")
    name: str
    scope: ApiKeyScope
    organization_id: strawberry.ID | None
    partner_id: strawberry.ID | None
    role: Role | None = strawberry.field(description="An organization key's role.")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = strawberry.field(
        description="When it last authenticated a request (kept to within a minute or so)."
    )

    @classmethod
    def from_domain(cls, key: DomainApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(str(key.id)),
            prefix=key.prefix,
            name=key.name,
            scope=ApiKeyScope(key.scope),
            organization_id=id_of(key.organization_id),
            partner_id=id_of(key.partner_id),
            role=key.role,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


@strawberry.type(description="A new API key: the only time its secret is shown.")
class CreatedApiKey:
    key: str = strawberry.field(description="Send as `Authorization: Bearer <key>`. Store it now: it is not kept.")
    api_key: ApiKey


@strawberry.type(description="A reseller or white-label account owning sub-organizations.")
class Partner:
    id: strawberry.ID
    name: str
    created_at: datetime

    @classmethod
    def from_domain(cls, partner: DomainPartner) -> Partner:
        return cls(id=strawberry.ID(str(partner.id)), name=partner.name, created_at=partner.created_at)


@strawberry.type(description="A signed user token.")
class UserToken:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime


@strawberry.type(description="A user's role in one organization.")
class Membership:
    organization_id: strawberry.ID
    role: Role
    team_id: strawberry.ID | None


@strawberry.type(description="The caller of this request.")
class Viewer:
    kind: PrincipalKind
    user_id: str | None = strawberry.field(description="For a user token: the user.")
    api_key_id: strawberry.ID | None = strawberry.field(description="For an API key: the key.")
    organization_id: strawberry.ID | None = strawberry.field(description="For an organization key: its org.")
    role: Role | None = strawberry.field(description="For an organization key: its role.")
    partner_id: strawberry.ID | None

    @strawberry.field(description="For a user: the organizations they belong to, with their roles.")
    async def memberships(self, info: Info) -> list[Membership]:
        if self.user_id is None:
            return []
        found = await memberships_of(info.context.resources.pool, self.user_id)
        partner_id = info.context.principal.partner_id
        return [
            Membership(
                organization_id=strawberry.ID(str(member.organization_id)),
                role=member.role,
                team_id=id_of(member.team_id),
            )
            for member in found
            # A partner-bound token reaches only that partner's orgs: list only those.
            if partner_id is None or await info.context.organization_partner(member.organization_id) == partner_id
        ]
