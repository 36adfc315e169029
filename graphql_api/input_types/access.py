"""Inputs of the access mutations: partners, API keys, user tokens."""

from __future__ import annotations

import strawberry

from graphql_api.enums import Role


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
