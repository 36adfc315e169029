"""Access in the API: who am I, partners, API keys and user tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta

import strawberry

from graphql_api.access.api_keys import ApiKey as DomainApiKey
from graphql_api.access.api_keys import api_key, create_api_key, revoke_api_key
from graphql_api.access.authorize import Authorize, nowhere
from graphql_api.access.members import memberships_of
from graphql_api.access.partners import create_partner, partner
from graphql_api.access.policy import Permission, Role
from graphql_api.access.principal import PrincipalKind
from graphql_api.access.tokens import issue_token, token_ttl_max
from graphql_api.context import Info
from graphql_api.errors import ApiError, invalid, not_found
from graphql_api.ids import parse_id
from graphql_api.mutations import NAME_LENGTH_MAX, optional_id
from ledger.core.errors import ErrorCode

strawberry.enum(Role, name="Role", description="A member's role in an organization (seed 001).")
strawberry.enum(PrincipalKind, name="PrincipalKind", description="What kind of caller a request comes from.")


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
            organization_id=None if key.organization_id is None else strawberry.ID(str(key.organization_id)),
            partner_id=None if key.partner_id is None else strawberry.ID(str(key.partner_id)),
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
                team_id=None if member.team_id is None else strawberry.ID(str(member.team_id)),
            )
            for member in found
            # A partner-bound token reaches only that partner's orgs: list only those.
            if partner_id is None or await info.context.organization_partner(member.organization_id) == partner_id
        ]


@strawberry.input(description="A new partner.")
class CreatePartnerInput:
    name: str
    id: strawberry.ID | None = strawberry.field(default=None, description="Choose the id to make creation idempotent.")


@strawberry.input(
    description=(
        "A new API key. With organizationId: a key of that organization with a role (Owners may create them). "
        "With partnerId: a partner's key. With neither: a platform admin key (admins only)."
    )
)
class CreateApiKeyInput:
    name: str
    organization_id: strawberry.ID | None = None
    role: Role | None = strawberry.field(default=None, description="Required for an organization key.")
    partner_id: strawberry.ID | None = None


@strawberry.input(description="Revoke a key: it stops working at once here and within seconds everywhere.")
class RevokeApiKeyInput:
    id: strawberry.ID
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="The key's organization; leave out for partner and admin keys."
    )


@strawberry.input(description="Mint a signed token for one of your users; their memberships decide what it may do.")
class CreateUserTokenInput:
    user_id: str = strawberry.field(description="Your id of the user (1 to 200 characters).")
    ttl_seconds: int = strawberry.field(default=3600, description="How long it is valid: 60 s to 30 days.")


@strawberry.type
class AccessQuery:
    @strawberry.field(extensions=[Authorize(Permission.IDENTIFY, nowhere)], description="Who is calling.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        key_id = principal.api_key_id
        return Viewer(
            kind=principal.kind,
            user_id=principal.id if principal.kind is PrincipalKind.USER else None,
            api_key_id=None if key_id is None else strawberry.ID(str(key_id)),
            organization_id=None
            if principal.organization_id is None
            else strawberry.ID(str(principal.organization_id)),
            role=principal.role,
            partner_id=None if principal.partner_id is None else strawberry.ID(str(principal.partner_id)),
        )


def _name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= NAME_LENGTH_MAX:
        raise invalid(f"name must be 1 to {NAME_LENGTH_MAX} characters")
    return name


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_PLATFORM, nowhere)], description="Create a partner (platform admins)."
    )
    async def create_partner(self, info: Info, input: CreatePartnerInput) -> Partner:
        name = _name(input.name)
        partner_id = parse_id(input.id, "id") if input.id is not None else uuid.uuid4()
        pool = info.context.resources.pool
        found = await create_partner(pool, partner_id, name) or await partner(pool, partner_id)
        if found is None or found.name != name:
            raise ApiError(ErrorCode.IDEMPOTENCY_CONFLICT, "a partner with this id exists with another name")
        return Partner(id=strawberry.ID(str(found.id)), name=found.name, created_at=found.created_at)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_KEYS, without_organization=Permission.MANAGE_PLATFORM)],
        description="Create an API key; its secret is shown in this answer only.",
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreatedApiKey:
        name = _name(input.name)
        pool = info.context.resources.pool
        organization_id = optional_id(input.organization_id, "organizationId")
        partner_id = optional_id(input.partner_id, "partnerId")
        if organization_id is not None:
            if input.role is None or partner_id is not None:
                raise invalid("an organization key needs a role and no partnerId")
            if await info.context.loaders.organization.load(organization_id) is None:
                raise not_found("organization")
            stored, key = await create_api_key(
                pool, name=name, scope="organization", organization_id=organization_id, role=input.role
            )
        elif partner_id is not None:
            if input.role is not None:
                raise invalid("a partner key has no role")
            if await partner(pool, partner_id) is None:
                raise not_found("partner")
            stored, key = await create_api_key(pool, name=name, scope="partner", partner_id=partner_id)
        else:
            if input.role is not None:
                raise invalid("an admin key has no role; give organizationId for an organization key")
            stored, key = await create_api_key(pool, name=name, scope="admin")
        return CreatedApiKey(key=key, api_key=ApiKey.from_domain(stored))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_KEYS, without_organization=Permission.MANAGE_PLATFORM)],
        description="Revoke an API key. Revoking a revoked key answers it as it is.",
    )
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> ApiKey:
        key_id = parse_id(input.id, "id")
        organization_id = optional_id(input.organization_id, "organizationId")
        pool = info.context.resources.pool
        found = await api_key(pool, key_id)
        # Another org's key is as unknown as a made-up id.
        if found is None or (organization_id is not None and found.organization_id != organization_id):
            raise not_found("API key")
        revoked = await revoke_api_key(pool, key_id)
        if revoked is None:
            raise not_found("API key")
        info.context.resources.authenticator.forget(revoked.prefix)
        return ApiKey.from_domain(revoked)

    @strawberry.mutation(
        extensions=[Authorize(Permission.ISSUE_USER_TOKENS, nowhere)],
        description="Mint a signed user token (admins, and partners for their own orgs' users).",
    )
    async def create_user_token(self, info: Info, input: CreateUserTokenInput) -> UserToken:
        user_id = input.user_id.strip()
        if not 1 <= len(user_id) <= NAME_LENGTH_MAX:
            raise invalid(f"userId must be 1 to {NAME_LENGTH_MAX} characters")
        ttl = timedelta(seconds=input.ttl_seconds)
        if not timedelta(seconds=60) <= ttl <= token_ttl_max:
            raise invalid("ttlSeconds must be 60 to 2592000")
        now = datetime.now(UTC).replace(microsecond=0)
        # A partner's token is bound to the partner's organizations.
        partner_id = info.context.principal.partner_id
        token = issue_token(info.context.resources.authenticator.token_secret, user_id, now, ttl, partner_id)
        return UserToken(token=token, expires_at=now + ttl)
