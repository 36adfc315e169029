"""Partners, API keys and user tokens: partners and keys are the directory's (`ledger.directory`),
written at once; Owners and the platform only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import strawberry

from graphql_api.access.authorize import Authorize, nowhere
from graphql_api.access.policy import Permission
from graphql_api.access.tokens import issue_token
from graphql_api.context import Info
from graphql_api.errors import invalid, not_found
from graphql_api.input_types.access import (
    CreateApiKeyInput,
    CreatePartnerInput,
    CreateUserTokenInput,
    RevokeApiKeyInput,
)
from graphql_api.inputs import (
    checked_name,
    optional_id,
    parse_id,
)
from graphql_api.types.access import ApiKey, CreatedApiKey, Partner, UserToken
from ledger import constants
from ledger.directory import api_keys, partners


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_PLATFORM, nowhere)], description="Create a partner (platform admins)."
    )
    async def create_partner(self, info: Info, input: CreatePartnerInput) -> Partner:
        name = checked_name(input.name)
        partner_id = optional_id(input.id, "id") or uuid.uuid4()
        found = await partners.create_partner(info.context.resources.pool, partner_id, name)
        return Partner.from_domain(found)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_KEYS, without_organization=Permission.MANAGE_PLATFORM)],
        description="Create an API key; its secret is shown in this answer only.",
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreatedApiKey:
        name = checked_name(input.name)
        pool = info.context.resources.pool
        organization_id = optional_id(input.organization_id, "organizationId")
        partner_id = optional_id(input.partner_id, "partnerId")
        if organization_id is not None:
            if input.role is None or partner_id is not None:
                raise invalid("an organization key needs a role and no partnerId")
            if await info.context.loaders.organization.load(organization_id) is None:
                raise not_found("organization")
            stored, key = await api_keys.create_api_key(
                pool, name=name, scope="organization", organization_id=organization_id, role=input.role
            )
        elif partner_id is not None:
            if input.role is not None:
                raise invalid("a partner key has no role")
            stored, key = await api_keys.create_partner_key(pool, name, partner_id)
        else:
            if input.role is not None:
                raise invalid("an admin key has no role; give organizationId for an organization key")
            stored, key = await api_keys.create_api_key(pool, name=name, scope="admin")
        return CreatedApiKey(key=key, api_key=ApiKey.from_domain(stored))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_KEYS, without_organization=Permission.MANAGE_PLATFORM)],
        description="Revoke an API key. Revoking a revoked key answers it as it is.",
    )
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> ApiKey:
        key_id = parse_id(input.id, "id")
        organization_id = optional_id(input.organization_id, "organizationId")
        revoked = await api_keys.revoke_api_key(info.context.resources.pool, key_id, organization_id)
        info.context.resources.authenticator.forget(revoked.prefix)
        return ApiKey.from_domain(revoked)

    @strawberry.mutation(
        extensions=[Authorize(Permission.ISSUE_USER_TOKENS, nowhere)],
        description="Mint a signed user token (admins, and partners for their own orgs' users).",
    )
    async def create_user_token(self, info: Info, input: CreateUserTokenInput) -> UserToken:
        user_id = checked_name(input.user_id, "userId")
        low, high = constants.user_token_ttl_min_s, constants.user_token_ttl_max_s
        if not low <= input.ttl_seconds <= high:
            raise invalid(f"ttlSeconds must be {low} to {high}")
        ttl = timedelta(seconds=input.ttl_seconds)
        now = datetime.now(UTC).replace(microsecond=0)
        # A partner's token is bound to the partner's organizations.
        partner_id = info.context.principal.partner_id
        token = issue_token(info.context.resources.authenticator.token_secret, user_id, now, ttl, partner_id)
        return UserToken(token=token, expires_at=now + ttl)
